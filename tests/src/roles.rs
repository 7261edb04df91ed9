//! The functions' roles as `infra/template.yaml` defines them, created in the emulator and
//! assumed: each handler talks to AWS with its own role's credentials, and the emulator's
//! IAM double (`emulator/iam_policy_double.py`) refuses what that role does not allow.
//!
//! The role policies are the template's, with its intrinsic functions resolved against what
//! the harness created (the ledger table, the bus, the topic) and the template's parameter
//! defaults; resources the harness does not create resolve to ARNs nothing matches.

use serde_json::{json, Map, Value};
use serde_norway::Value as Yaml;
use std::collections::HashMap;

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "eu-west-1";

/// What the template's `!Ref`, `!GetAtt` and `${…}` resolve to.
pub struct TemplateValues {
    pub stack_name: String,
    /// Parameter overrides (others take the template's defaults).
    pub parameters: HashMap<String, String>,
    /// `!Ref Resource` → value.
    pub refs: HashMap<String, String>,
    /// `!GetAtt Resource.Arn` → ARN.
    pub arns: HashMap<String, String>,
}

/// The template's function roles, by logical id.
pub const ALARM_HANDLER: &str = "AlarmHandlerRole";
pub const RELAUNCH: &str = "RelaunchRole";
pub const NOTIFIER: &str = "NotifierRole";
pub const BACKUP_SCHEDULER: &str = "BackupSchedulerRole";
pub const OPERATOR: &str = "OperatorRole";
pub const FUNCTION_ROLES: [&str; 5] = [ALARM_HANDLER, RELAUNCH, NOTIFIER, BACKUP_SCHEDULER, OPERATOR];

fn template() -> Yaml {
    let text = std::fs::read_to_string(crate::stack::template_path()).expect("infra/template.yaml");
    serde_norway::from_str(&text).expect("template parses")
}

struct Resolver<'a> {
    values: &'a TemplateValues,
    parameters: &'a Yaml,
    conditions: &'a Yaml,
    resources: &'a Yaml,
}

/// Resource types the harness does not create: their grants serve the Lambda service (logs,
/// the on-failure queue) or the services that encrypt for the functions (the key), never a
/// handler's own request.
const NOT_IN_THE_HARNESS: [&str; 3] = ["AWS::Logs::LogGroup", "AWS::SQS::Queue", "AWS::KMS::Key"];

/// What `!Ref AWS::NoValue` resolves to until its list drops it.
const NO_VALUE: &str = "\u{0}AWS::NoValue";

impl Resolver<'_> {
    fn reference(&self, name: &str) -> String {
        match name {
            "AWS::StackName" => return self.values.stack_name.clone(),
            "AWS::Region" => return REGION.into(),
            "AWS::AccountId" => return ACCOUNT.into(),
            "AWS::Partition" => return "aws".into(),
            "AWS::URLSuffix" => return "amazonaws.com".into(),
            "AWS::NoValue" => return NO_VALUE.into(),
            _ => {}
        }
        if let Some(v) = self.values.parameters.get(name).or_else(|| self.values.refs.get(name)) {
            return v.clone();
        }
        if let Some(default) = self.parameters.get(name).and_then(|p| p.get("Default")) {
            return match default {
                Yaml::String(s) => s.clone(),
                other => serde_norway::to_string(other).unwrap().trim().to_string(),
            };
        }
        self.not_in_the_harness(name)
    }

    /// A resource the harness deliberately does not create: an ARN nothing matches.
    fn not_in_the_harness(&self, resource: &str) -> String {
        let kind = self.resources.get(resource).and_then(|r| r.get("Type")).and_then(|t| t.as_str()).unwrap_or("");
        assert!(
            NOT_IN_THE_HARNESS.contains(&kind),
            "a role policy refers to {resource} ({kind}), which the harness neither creates nor names"
        );
        format!("arn:aws:not-in-the-harness:{REGION}:{ACCOUNT}:{resource}")
    }

    fn attribute(&self, path: &str) -> String {
        let (resource, attribute) = path.split_once('.').expect("GetAtt Resource.Attribute");
        assert_eq!(attribute, "Arn", "the harness resolves only Arn attributes, not {path}");
        self.values.arns.get(resource).cloned().unwrap_or_else(|| self.not_in_the_harness(resource))
    }

    fn substitute(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let end = rest[start..].find('}').expect("closed ${…}") + start;
            let name = &rest[start + 2..end];
            out.push_str(&if name.contains('.') { self.attribute(name) } else { self.reference(name) });
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    fn condition(&self, name: &str) -> bool {
        let c = self.conditions.get(name).unwrap_or_else(|| panic!("condition {name}"));
        self.truth(c)
    }

    fn truth(&self, v: &Yaml) -> bool {
        let (function, argument) = intrinsic(v).unwrap_or_else(|| panic!("a condition function, not {v:?}"));
        let items = || argument.as_sequence().expect("a list").iter();
        match function.as_str() {
            "Equals" => {
                // CloudFormation compares the values as strings (a Number parameter's "0" equals 0).
                let text = |v: Value| v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                let both: Vec<String> = items().map(|i| text(self.resolve(i))).collect();
                both[0] == both[1]
            }
            "Not" => !self.truth(&argument.as_sequence().expect("[condition]")[0]),
            "And" => items().all(|i| self.truth(i)),
            "Or" => items().any(|i| self.truth(i)),
            "Condition" => self.condition(argument.as_str().expect("a condition name")),
            other => panic!("condition function {other}"),
        }
    }

    fn resolve(&self, v: &Yaml) -> Value {
        if let Some((function, argument)) = intrinsic(v) {
            return match function.as_str() {
                "Ref" => Value::String(self.reference(argument.as_str().expect("Ref name"))),
                "GetAtt" => Value::String(match argument {
                    Yaml::Sequence(parts) => {
                        self.attribute(&format!("{}.{}", parts[0].as_str().unwrap(), parts[1].as_str().unwrap()))
                    }
                    other => self.attribute(other.as_str().expect("GetAtt path")),
                }),
                "Sub" => {
                    Value::String(self.substitute(argument.as_str().expect("the harness resolves one-argument Sub")))
                }
                "If" => {
                    let parts = argument.as_sequence().expect("[condition, then, else]");
                    let branch = if self.condition(parts[0].as_str().unwrap()) { &parts[1] } else { &parts[2] };
                    self.resolve(branch)
                }
                other => panic!("the harness does not resolve Fn::{other} in a role policy"),
            };
        }
        match v {
            // CloudFormation drops a list item that resolves to AWS::NoValue.
            Yaml::Sequence(items) => {
                Value::Array(items.iter().map(|i| self.resolve(i)).filter(|v| v.as_str() != Some(NO_VALUE)).collect())
            }
            Yaml::Mapping(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (k.as_str().expect("string keys").to_string(), self.resolve(v)))
                    .collect::<Map<_, _>>(),
            ),
            other => serde_json::to_value(other).expect("plain data"),
        }
    }
}

/// `!Fn arg` or `{Fn::Fn: arg}` → ("Fn", arg).
fn intrinsic(v: &Yaml) -> Option<(String, &Yaml)> {
    match v {
        Yaml::Tagged(t) => Some((t.tag.to_string().trim_start_matches('!').to_string(), &t.value)),
        Yaml::Mapping(m) if m.len() == 1 => {
            let (k, arg) = m.iter().next()?;
            let k = k.as_str()?;
            let function = k.strip_prefix("Fn::").or(matches!(k, "Ref" | "Condition").then_some(k))?;
            Some((function.to_string(), arg))
        }
        _ => None,
    }
}

/// The role's policies as the template defines them, resolved: (policy name, document).
pub fn role_policies(role: &str, values: &TemplateValues) -> Vec<(String, Value)> {
    let doc = template();
    let resolver = Resolver {
        values,
        parameters: doc.get("Parameters").unwrap_or(&Yaml::Null),
        conditions: doc.get("Conditions").unwrap_or(&Yaml::Null),
        resources: doc.get("Resources").unwrap_or(&Yaml::Null),
    };
    let resource = &doc["Resources"][role];
    assert_eq!(resource["Type"].as_str(), Some("AWS::IAM::Role"), "{role} is a role");
    resource["Properties"]["Policies"]
        .as_sequence()
        .expect("inline policies")
        .iter()
        .map(|p| (p["PolicyName"].as_str().unwrap().to_string(), resolver.resolve(&p["PolicyDocument"])))
        .collect()
}

/// Creates the function role `role` (a logical id) with its template policies, less the
/// grant `without` (a test shows the grant is needed), and assumes it: `handler_sdk` with
/// the role's credentials. `without` is an action (taken out wherever it is granted) or
/// `action@suffix` (only resources ending in `suffix` taken out of that action's grants).
pub async fn assume_function_role(
    admin: &aws_config::SdkConfig,
    handler_sdk: &aws_config::SdkConfig,
    role: &str,
    values: &TemplateValues,
    without: Option<&str>,
) -> RoleSession {
    let iam = aws_sdk_iam::Client::new(admin);
    let name = format!("{}-{role}", values.stack_name);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]});
    let arn = iam
        .create_role()
        .role_name(&name)
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("create the function's role")
        .role()
        .map(|r| r.arn().to_string())
        .expect("created role");
    let policies = role_policies(role, values);
    if let Some(grant) = without {
        let action = grant.split('@').next().unwrap_or(grant);
        assert!(
            policies
                .iter()
                .any(|(_, d)| d["Statement"].as_array().is_some_and(|s| s.iter().any(|s| grants(s, action)))),
            "{role} does not grant {action}"
        );
    }
    for (policy_name, mut document) in policies {
        if let (Some(action), Some(statements)) = (without, document["Statement"].as_array_mut()) {
            withhold(statements, action);
        }
        iam.put_role_policy()
            .role_name(&name)
            .policy_name(policy_name)
            .policy_document(document.to_string())
            .send()
            .await
            .expect("put the role's policy");
    }
    let credentials = aws_sdk_sts::Client::new(admin)
        .assume_role()
        .role_arn(arn)
        .role_session_name(role)
        .send()
        .await
        .expect("assume the function's role")
        .credentials
        .expect("credentials");
    let environment = vec![
        ("AWS_ACCESS_KEY_ID".to_string(), credentials.access_key_id.clone()),
        ("AWS_SECRET_ACCESS_KEY".to_string(), credentials.secret_access_key.clone()),
        ("AWS_SESSION_TOKEN".to_string(), credentials.session_token.clone()),
    ];
    let credentials = aws_sdk_sqs::config::Credentials::new(
        credentials.access_key_id,
        credentials.secret_access_key,
        Some(credentials.session_token),
        None,
        "function-role",
    );
    let sdk = handler_sdk
        .to_builder()
        .credentials_provider(aws_sdk_sqs::config::SharedCredentialsProvider::new(credentials))
        .build();
    RoleSession { sdk, environment }
}

/// A function role, assumed.
pub struct RoleSession {
    /// The handler's SDK configuration with the role's credentials.
    pub sdk: aws_config::SdkConfig,
    /// The same credentials as a Lambda function's environment gets them.
    pub environment: Vec<(String, String)>,
}

/// Removes the grant (see [`assume_function_role`]), and statements left with no action or
/// no resource.
fn withhold(statements: &mut Vec<Value>, grant: &str) {
    let (action, resource_suffix) = match grant.split_once('@') {
        Some((action, suffix)) => (action, Some(suffix)),
        None => (grant, None),
    };
    for statement in statements.iter_mut().filter(|s| grants(s, action)) {
        match resource_suffix {
            None => match statement["Action"].as_array_mut() {
                Some(actions) => actions.retain(|a| a.as_str() != Some(action)),
                None => statement["Action"] = Value::Array(Vec::new()),
            },
            Some(suffix) => {
                let kept: Vec<Value> = match &statement["Resource"] {
                    Value::Array(rs) => {
                        rs.iter().filter(|r| !r.as_str().is_some_and(|r| r.ends_with(suffix))).cloned().collect()
                    }
                    Value::String(r) if r.ends_with(suffix) => Vec::new(),
                    other => vec![other.clone()],
                };
                statement["Resource"] = Value::Array(kept);
            }
        }
    }
    statements.retain(|s| {
        s["Action"].as_array().is_none_or(|a| !a.is_empty()) && s["Resource"].as_array().is_none_or(|r| !r.is_empty())
    });
}

fn grants(statement: &Value, action: &str) -> bool {
    match &statement["Action"] {
        Value::String(a) => a == action,
        Value::Array(actions) => actions.iter().any(|a| a.as_str() == Some(action)),
        _ => false,
    }
}
