"""IAM as AWS enforces it, for callers that hold a role's (or a user's) credentials, loaded
into the moto server. moto 5.2's own enforcement (`INITIAL_NO_AUTH_ACTION_COUNT`) matches
every request against `Resource: "*"` only and denies any condition it cannot evaluate, so
the project's scoped, conditioned policies could not pass under it.

- Requests signed with keys from `sts:AssumeRole` (or an IAM user's access key) are
  evaluated against that role's (user's) inline and attached policies: an explicit Deny
  wins, otherwise some Allow must match the action, the resource and every condition
  ("an implicit deny ... if there is no applicable Allow", IAM policy evaluation logic).
- A request authorizes every resource it names, each with its own condition context
  (aws:ResourceTag of that resource, aws:RequestTag, aws:TagKeys, and the service's keys),
  as the Service Authorization Reference lists for the action; RunInstances, for example,
  authorizes the instance, image, subnet, groups, network interface and volume it uses,
  the launch template it names, and CreateTags for the tags it creates (ec2:CreateAction).
- Passing a role (an instance profile's, the runbook's AutomationAssumeRole) authorizes
  iam:PassRole on that role with iam:PassedToService.
- An action this double has no resource list for is refused, so a new call is noticed.
- S3 requests are evaluated by the bucket or object they act on; the Lambda
  GetAccountSettings route of `aws_event_doubles.py` asks `refusal` itself.
- Requests signed with the harness's key (`testing`) are not evaluated; a key neither the
  harness's nor known to IAM/STS (or a session token that does not match) is refused.

Set IAM_DOUBLE_DENIALS=FILE to have each refusal appended to FILE.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any
from urllib.parse import parse_qs, urlparse

from moto.core.exceptions import ServiceException
from moto.core.responses import (
    PROTOCOL_PARSERS,
    ActionResult,
    BaseResponse,
    determine_request_protocol,
    get_service_model,
    normalize_request,
)
from moto.iam.access_control import CreateAccessKeyFailure, IAMPolicy, create_access_key
from moto.s3.responses import S3Response

_original_setup_class = BaseResponse.setup_class
_original_authorize_s3 = S3Response._authenticate_and_authorize_s3_action
_original_call_action = BaseResponse.call_action

# SigV4 signing names whose IAM service prefix differs.
_IAM_PREFIX = {"monitoring": "cloudwatch"}


class AccessDenied(ServiceException):
    pass


class Authorization:
    """One resource a request acts on, as IAM evaluates it."""

    def __init__(self, action: str, resource: str, context: dict[str, Any] | None = None,
                 alternatives: list[str] | None = None) -> None:
        self.action = action
        self.resource = resource
        self.context = {k.lower(): v for k, v in (context or {}).items()}
        # Other ARNs of the same resource; a grant on any one of them allows the request.
        self.alternatives = alternatives or []


# --- policy evaluation -------------------------------------------------------------------


def _glob(pattern: str, value: str, ignore_case: bool = False) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


class Unevaluable(Exception):
    """A condition this double cannot evaluate: the request is refused, saying so."""


def _arn_matches(pattern: str, arn: str) -> bool:
    # ARN operators compare segment by segment: a wildcard never spans a colon of the
    # first five separators.
    p, a = pattern.split(":", 5), arn.split(":", 5)
    return len(p) == len(a) == 6 and all(_glob(x, y) for x, y in zip(p, a))


def _value_matches(operator: str, actual: str, expected: list[str]) -> bool:
    if operator == "StringEquals":
        return actual in expected
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in [e.lower() for e in expected]
    if operator == "StringLike":
        return any(_glob(e, actual) for e in expected)
    if operator in ("ArnLike", "ArnEquals"):
        return any(_arn_matches(e, actual) for e in expected)
    if operator == "Bool":
        return actual.lower() in [str(e).lower() for e in expected]
    raise Unevaluable(f"the IAM double does not evaluate the condition operator {operator}")


_NEGATED = {"StringNotEquals": "StringEquals", "StringNotLike": "StringLike", "ArnNotLike": "ArnLike",
            "ArnNotEquals": "ArnEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase"}


def _condition_holds(full_operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    expected = [str(e) if not isinstance(e, str) else e for e in _as_list(expected)]
    actual = context.get(key.lower())
    if full_operator == "Null":
        # "Null ... true (the key doesn't exist, it is null) or false (the key exists)"
        return (actual is None) == (expected[0].lower() == "true")
    qualifier, _, operator = full_operator.rpartition(":")
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)

    def holds(value: str) -> bool:
        return not _value_matches(base, value, expected) if negated else _value_matches(base, value, expected)

    if actual is None:
        # A key absent from the request context: ForAllValues holds (the empty set),
        # ForAnyValue does not; otherwise ...IfExists and negated operators hold.
        if qualifier == "ForAllValues":
            return True
        if qualifier == "ForAnyValue":
            return False
        return if_exists or negated
    values = _as_list(actual)
    if qualifier == "ForAllValues":
        return all(holds(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(holds(v) for v in values)
    if len(values) != 1:
        raise Unevaluable(f"{key} has several values: a set operator (ForAllValues/ForAnyValue) must qualify {operator}")
    return holds(values[0])


def _statement_applies(statement: dict, request: Authorization) -> bool:
    if "Action" in statement:
        if not any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"])):
            return False
    elif any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement.get("NotAction", []))):
        return False
    if "Resource" in statement:
        if not any(_glob(r, request.resource) for r in _as_list(statement["Resource"])):
            return False
    elif any(_glob(r, request.resource) for r in _as_list(statement.get("NotResource", []))):
        return False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, expected in keys.items():
            if not _condition_holds(operator, key, expected, request.context):
                return False
    return True


def decide(policies: list[dict], request: Authorization) -> bool:
    """True when the policies allow the request: no Deny applies and some Allow does."""
    allowed = False
    for policy in policies:
        for statement in _as_list(policy.get("Statement", [])):
            if _statement_applies(statement, request):
                if statement.get("Effect") == "Deny":
                    return False
                allowed = True
    return allowed


# --- what a request authorizes ------------------------------------------------------------


class Request:
    def __init__(self, response: BaseResponse, service: str, region: str, params: dict) -> None:
        self.response = response
        self.service = service
        self.action = response._get_action()
        self.region = region
        self.account = response.current_account
        self.params = params

    def arn(self, service: str, resource: str, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account if account else ''}:{resource}"


def _tags_of(tag_list: list[dict] | None) -> dict[str, str]:
    return {t.get("Key"): t.get("Value", "") for t in (tag_list or []) if t.get("Key") is not None}


def _request_tags(tags: dict[str, str]) -> dict[str, Any]:
    context: dict[str, Any] = {f"aws:RequestTag/{k}": v for k, v in tags.items()}
    if tags:
        context["aws:TagKeys"] = list(tags)
    return context


def _ec2_backend(r: Request):
    from moto.ec2.models import ec2_backends

    return ec2_backends[r.account][r.region]


_EC2_TYPES = {"i": "instance", "eni": "network-interface", "sg": "security-group", "subnet": "subnet",
              "vpc": "vpc", "vol": "volume", "ami": "image", "snap": "snapshot", "lt": "launch-template"}


def _ec2_arn(r: Request, resource_id: str) -> str:
    kind = _EC2_TYPES.get(resource_id.split("-")[0], "unknown")
    # Images and snapshots have no account in their ARN.
    return r.arn("ec2", f"{kind}/{resource_id}", account=kind not in ("image", "snapshot"))


def _ec2_resource(r: Request, action: str, resource_id: str, extra: dict | None = None) -> Authorization:
    tags = _ec2_backend(r).tags.get(resource_id, {})
    context = {f"aws:ResourceTag/{k}": v for k, v in tags.items()}
    return Authorization(action, _ec2_arn(r, resource_id), {**context, **(extra or {})})


def _pass_role(r: Request, role_arn: str, service: str) -> Authorization:
    return Authorization("iam:PassRole", role_arn, {"iam:PassedToService": service})


def _run_instances(r: Request) -> list[Authorization]:
    p, backend = r.params, _ec2_backend(r)
    action = "ec2:RunInstances"
    template_arg = p.get("LaunchTemplate") or {}
    data: dict = {}
    auths: list[Authorization] = []
    context: dict[str, Any] = {}
    if template_arg:
        version = backend._get_template_from_args(template_arg)
        data = version.data
        template_id = version.template.id
        context["ec2:LaunchTemplate"] = _ec2_arn(r, template_id)
        auths.append(_ec2_resource(r, action, template_id))
    interfaces = p.get("NetworkInterfaces") or data.get("NetworkInterfaces") or []
    subnets = {i.get("SubnetId") for i in interfaces if i.get("SubnetId")}
    if p.get("SubnetId") or data.get("SubnetId"):
        subnets.add(p.get("SubnetId") or data.get("SubnetId"))
    groups = set(p.get("SecurityGroupIds") or data.get("SecurityGroupIds") or [])
    for name in p.get("SecurityGroups") or data.get("SecurityGroups") or []:
        groups.update(g.id for g in backend.describe_security_groups(filters={"group-name": [name]}))
    for i in interfaces:
        groups.update(i.get("Groups") or i.get("SecurityGroupIds") or i.get("SecurityGroupId") or [])
    image = p.get("ImageId") or data.get("ImageId")
    created: dict[str, dict[str, str]] = {}
    for spec in list(data.get("TagSpecifications") or []) + list(p.get("TagSpecifications") or []):
        if spec.get("ResourceType") == "launch-template":
            continue  # moto keeps the template's own tags among its data's
        created.setdefault(spec.get("ResourceType"), {}).update(_tags_of(spec.get("Tags") or spec.get("Tag")))
    auths.append(Authorization(action, r.arn("ec2", "instance/*"), {**context, **_request_tags(created.get("instance", {}))}))
    auths.append(Authorization(action, r.arn("ec2", "network-interface/*"), context))
    auths.append(Authorization(action, r.arn("ec2", "volume/*"), context))
    if image:
        auths.append(_ec2_resource(r, action, image, context))
        # Its EBS snapshots, which the new volumes are created from.
        found = backend.amis.get(image)
        snapshot = getattr(found, "ebs_snapshot", None)
        if snapshot is not None:
            auths.append(_ec2_resource(r, action, snapshot.id, context))
    auths.extend(_ec2_resource(r, action, s, context) for s in sorted(subnets))
    auths.extend(_ec2_resource(r, action, g, context) for g in sorted(groups))
    key = p.get("KeyName") or data.get("KeyName")
    if key:
        auths.append(Authorization(action, r.arn("ec2", f"key-pair/{key}"), context))
    for kind, tags in created.items():
        if tags:
            auths.append(Authorization("ec2:CreateTags", r.arn("ec2", f"{kind}/*"),
                                       {"ec2:CreateAction": "RunInstances", **_request_tags(tags)}))
    profile = p.get("IamInstanceProfile") or data.get("IamInstanceProfile") or {}
    if profile:
        from moto.iam.models import iam_backends

        iam = iam_backends[r.account]["aws"]
        found = (iam.get_instance_profile_by_arn(profile["Arn"]) if profile.get("Arn")
                 else iam.get_instance_profile(profile["Name"]))
        auths.extend(_pass_role(r, role.arn, "ec2.amazonaws.com") for role in found.roles)
    return auths


def _create_security_group(r: Request) -> list[Authorization]:
    tags: dict[str, str] = {}
    for spec in r.params.get("TagSpecifications") or []:
        tags.update(_tags_of(spec.get("Tags")))
    auths = [Authorization("ec2:CreateSecurityGroup", r.arn("ec2", "security-group/*"), _request_tags(tags))]
    if r.params.get("VpcId"):
        auths.append(_ec2_resource(r, "ec2:CreateSecurityGroup", r.params["VpcId"]))
    if tags:
        auths.append(Authorization("ec2:CreateTags", r.arn("ec2", "security-group/*"),
                                   {"ec2:CreateAction": "CreateSecurityGroup", **_request_tags(tags)}))
    return auths


def _modify_network_interface(r: Request) -> list[Authorization]:
    action = "ec2:ModifyNetworkInterfaceAttribute"
    eni_id = r.params["NetworkInterfaceId"]
    auths = [_ec2_resource(r, action, eni_id)]
    eni = _ec2_backend(r).get_network_interface(eni_id)
    if eni.instance is not None:
        auths.append(_ec2_resource(r, action, eni.instance.id))
    auths.extend(_ec2_resource(r, action, g) for g in r.params.get("Groups") or [])
    return auths


def _tagging(r: Request) -> list[Authorization]:
    tags = _tags_of(r.params.get("Tags"))
    context: dict[str, Any] = _request_tags(tags) if r.action == "CreateTags" else (
        {"aws:TagKeys": list(tags)} if tags else {})
    return [_ec2_resource(r, f"ec2:{r.action}", rid, context) for rid in r.params.get("Resources") or []]


def _each(param: str):
    def authorize(r: Request) -> list[Authorization]:
        ids = _as_list(r.params.get(param) or [])
        return [_ec2_resource(r, f"ec2:{r.action}", i) for i in ids]
    return authorize


def _anything(r: Request) -> list[Authorization]:
    return [Authorization(f"{r.service}:{r.action}", "*")]


def _dynamodb(r: Request) -> list[Authorization]:
    table = r.params["TableName"].split(":table/")[-1]
    resource = f"table/{table}" + (f"/index/{r.params['IndexName']}" if r.params.get("IndexName") else "")
    return [Authorization(f"dynamodb:{r.action}", r.arn("dynamodb", resource))]


def _put_events(r: Request) -> list[Authorization]:
    buses = {e.get("EventBusName") or "default" for e in r.params.get("Entries") or []}
    return [Authorization("events:PutEvents", b if b.startswith("arn:") else r.arn("events", f"event-bus/{b}"))
            for b in sorted(buses)]


def _publish(r: Request) -> list[Authorization]:
    return [Authorization("sns:Publish", r.params.get("TopicArn") or r.params.get("TargetArn"))]


def _parameter_arn(r: Request, name: str) -> str:
    if name.startswith("arn:"):
        return name
    path = name.lstrip("/")
    # AWS's public parameters (/aws/service/...) have no account in their ARN.
    return r.arn("ssm", f"parameter/{path}", account=not path.startswith("aws/service/"))


def _parameters(r: Request) -> list[Authorization]:
    names = r.params.get("Names") or [r.params.get("Name")]
    return [Authorization(f"ssm:{r.action}", _parameter_arn(r, n)) for n in names]


def _start_automation(r: Request) -> list[Authorization]:
    document = r.params["DocumentName"]
    version = r.params.get("DocumentVersion") or "$DEFAULT"
    # AWS's examples grant either the document or the automation definition of a version; a
    # document named by ARN (shared by another account) is that account's.
    if document.startswith("arn:"):
        owner_region_account, name = document.split(":document/", 1)
        definition, plain = f"{owner_region_account}:automation-definition/{name}:{version}", document
    else:
        definition = r.arn("ssm", f"automation-definition/{document}:{version}")
        plain = r.arn("ssm", f"document/{document}")
    auths = [Authorization("ssm:StartAutomationExecution", definition, alternatives=[plain])]
    tags = _tags_of(r.params.get("Tags"))
    if tags:
        auths.append(Authorization("ssm:AddTagsToResource", r.arn("ssm", "automation-execution/*"), _request_tags(tags)))
    role = (r.params.get("Parameters") or {}).get("AutomationAssumeRole")
    if role:
        auths.append(_pass_role(r, role[0], "ssm.amazonaws.com"))
    return auths


def _automation_execution(r: Request) -> list[Authorization]:
    return [Authorization(f"ssm:{r.action}", r.arn("ssm", f"automation-execution/{r.params['AutomationExecutionId']}"))]


def _send_command(r: Request) -> list[Authorization]:
    # SendCommand's resource types (Service Authorization Reference): the document and each
    # instance it targets (with its tags for aws:ResourceTag).
    document = r.params["DocumentName"]
    auths = [Authorization("ssm:SendCommand", document if document.startswith("arn:")
                           else r.arn("ssm", f"document/{document}"))]
    auths.extend(_ec2_resource(r, "ssm:SendCommand", i) for i in r.params.get("InstanceIds") or [])
    return auths


def _targets(r: Request) -> list[Authorization]:
    return [Authorization(f"elasticloadbalancing:{r.action}", r.params["TargetGroupArn"])]


def _stack(r: Request) -> list[Authorization]:
    name = r.params.get("StackName")
    if not name:
        return [Authorization(f"cloudformation:{r.action}", "*")]
    return [Authorization(f"cloudformation:{r.action}",
                          name if name.startswith("arn:") else r.arn("cloudformation", f"stack/{name}/*"))]


def _function(r: Request) -> list[Authorization]:
    name = r.params["FunctionName"]
    return [Authorization(f"lambda:{r.action}", name if name.startswith("arn:") else r.arn("lambda", f"function:{name}"))]


def _describe_alarms(r: Request) -> list[Authorization]:
    # The alarms named; a listing by prefix names none, so it is authorized on every alarm
    # (no AWS document says a prefix narrows the resource: the double assumes it does not).
    names = r.params.get("AlarmNames") or ["*"]
    return [Authorization("cloudwatch:DescribeAlarms", r.arn("cloudwatch", f"alarm:{n}")) for n in names]


_AUTHORIZATIONS = {
    ("ec2", "RunInstances"): _run_instances,
    ("ec2", "CreateSecurityGroup"): _create_security_group,
    ("ec2", "RevokeSecurityGroupEgress"): _each("GroupId"),
    ("ec2", "ModifyNetworkInterfaceAttribute"): _modify_network_interface,
    ("ec2", "CreateTags"): _tagging,
    ("ec2", "DeleteTags"): _tagging,
    ("ec2", "TerminateInstances"): _each("InstanceIds"),
    ("ec2", "DeregisterImage"): _each("ImageId"),
    ("ec2", "DeleteSnapshot"): _each("SnapshotId"),
    ("ec2", "DeleteSecurityGroup"): _each("GroupId"),
    **{("ec2", a): _anything for a in ("DescribeInstances", "DescribeImages", "DescribeSnapshots", "DescribeSubnets",
                                       "DescribeSecurityGroups", "DescribeLaunchTemplates",
                                       "DescribeLaunchTemplateVersions", "DescribeNetworkInterfaces")},
    **{("dynamodb", a): _dynamodb for a in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query")},
    ("events", "PutEvents"): _put_events,
    ("sns", "Publish"): _publish,
    ("ssm", "GetParameter"): _parameters,
    ("ssm", "GetParameters"): _parameters,
    ("ssm", "PutParameter"): _parameters,
    ("ssm", "StartAutomationExecution"): _start_automation,
    ("ssm", "GetAutomationExecution"): _automation_execution,
    ("ssm", "DescribeAutomationExecutions"): _anything,
    ("ssm", "SendCommand"): _send_command,
    ("ssm", "GetCommandInvocation"): _anything,
    ("elasticloadbalancing", "RegisterTargets"): _targets,
    ("elasticloadbalancing", "DeregisterTargets"): _targets,
    ("elasticloadbalancing", "DescribeTargetGroups"): _anything,
    ("elasticloadbalancing", "DescribeTargetHealth"): _anything,
    ("cloudwatch", "DescribeAlarms"): _describe_alarms,
    ("cloudwatch", "GetMetricData"): _anything,
    # "ResourceARN: The ARN of the CloudWatch resource that you want to view tags for."
    ("cloudwatch", "ListTagsForResource"): lambda r: [Authorization("cloudwatch:ListTagsForResource",
                                                                    r.params["ResourceARN"])],
    # The deployer's own calls (stackctl); what CloudFormation then creates is not a request.
    **{("cloudformation", a): _stack for a in ("CreateStack", "UpdateStack", "DeleteStack", "DescribeStackEvents",
                                               "DescribeStacks", "DescribeStackResources", "GetTemplate")},
    ("cloudwatch", "SetAlarmState"): lambda r: [Authorization("cloudwatch:SetAlarmState",
                                                              r.arn("cloudwatch", f"alarm:{r.params['AlarmName']}"))],
    ("lambda", "GetFunctionConcurrency"): _function,
    ("lambda", "GetFunctionConfiguration"): _function,
    ("lambda", "GetFunction"): _function,
    ("ssm", "GetParametersByPath"): lambda r: [Authorization("ssm:GetParametersByPath",
                                                             _parameter_arn(r, r.params["Path"].rstrip("/")))],
    ("ssm", "DeleteParameters"): _parameters,
}


# --- wiring into moto -------------------------------------------------------------------


def _parsed_params(response: BaseResponse) -> dict:
    request = getattr(response, "_iam_double_request", None)
    service_model = get_service_model(response.boto3_service_name)
    operation_model = service_model.operation_model(response._get_action())
    normalized = normalize_request(request)
    protocol = determine_request_protocol(service_model, normalized.content_type)
    parser = PROTOCOL_PARSERS[protocol](operation_model, map_type=dict)
    return parser.parse({
        "method": normalized.method,
        "values": normalized.values,
        "headers": normalized.headers,
        "body": normalized.data,
        "url_path": normalized.path,
        "url_params": response.uri_match.groupdict() if response.uri_match else {},
    })


# The key the harness, the demo and the tests' own setup sign with: not evaluated.
HARNESS_KEY = "testing"
INVALID_TOKEN = "The security token included in the request is invalid"


def _caller(account: str, headers: Any):
    """(caller ARN, principal ARN for aws:PrincipalArn, policies), or None for the harness.
    Credentials that are neither the harness's nor known to IAM/STS are refused."""
    match = re.search(r"Credential=([^/]+)/", headers.get("Authorization", ""))
    key_id = match.group(1) if match else None
    if key_id == HARNESS_KEY:
        return None
    try:
        if key_id is None:
            raise CreateAccessKeyFailure(reason="unsigned")
        key = create_access_key(account_id=account, partition="aws", access_key_id=key_id, headers=headers)
    except (CreateAccessKeyFailure, KeyError) as e:  # unknown key, wrong or missing session token
        return f"credentials {key_id} ({getattr(e, 'reason', type(e).__name__)})", "", [], True
    try:
        policies = [_document(p) for p in key.collect_policies()]
    except Exception as e:  # a role or user deleted since its key was issued
        return f"credentials {key_id} ({type(e).__name__}: {e})", "", [], True
    principal = key.arn
    role = getattr(key, "_owner_role_name", None)
    if role is not None:
        # aws:PrincipalArn of a role session is the role's ARN (with its path), not the session's.
        from moto.iam.models import iam_backends

        principal = iam_backends[account]["aws"].get_role(role).arn
    return key.arn, principal, policies, False


def _document(policy: Any) -> dict:
    # Inline policies put by CloudFormation are kept as dicts, by the API as JSON text.
    if isinstance(policy, dict) and "Statement" in policy:
        return policy
    if isinstance(policy, str):
        return json.loads(policy)
    return IAMPolicy(policy)._policy_json


def _scope(headers: Any) -> tuple[str, str]:
    """(region, IAM service prefix) from the request's signature."""
    scope = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/", headers.get("Authorization", ""))
    return (scope.group(1), _IAM_PREFIX.get(scope.group(2), scope.group(2))) if scope else ("us-east-1", "")


def refusal(account: str, headers: Any, action: str, authorize) -> str | None:
    """Why IAM refuses `action` (service:Action), or None when the caller's policies allow
    every authorization `authorize()` lists (or the caller is not evaluated). Each refusal
    is logged."""
    why = _why_refused(account, headers, action, authorize)
    if why is not None:
        log(why)
    return why


def _why_refused(account: str, headers: Any, action: str, authorize) -> str | None:
    caller = _caller(account, headers)
    if caller is None:
        return None
    arn, principal, policies, invalid = caller
    if invalid:
        return f"{INVALID_TOKEN}: {arn}"
    if action == "sts:GetCallerIdentity":
        return None
    if authorize is None:
        return (f"User: {arn} is not authorized to perform: {action} "
                "(the IAM double knows no resources for this action: add it to tests/emulator/iam_policy_double.py)")
    region, _ = _scope(headers)
    for auth in authorize():
        auth.context.setdefault("aws:principalarn", principal)
        auth.context.setdefault("aws:requestedregion", region)
        try:
            allowed = any(decide(policies, Authorization(auth.action, resource, auth.context))
                          for resource in [auth.resource, *auth.alternatives])
        except Unevaluable as e:
            return f"User: {arn} is not authorized to perform: {auth.action} on resource: {auth.resource} ({e})"
        if not allowed:
            return (f"User: {arn} is not authorized to perform: {auth.action} on resource: {auth.resource} "
                    "because no identity-based policy allows the action")
    return None


def denial(response: BaseResponse) -> str | None:
    """Why IAM refuses this request, or None when it allows it (or does not evaluate it)."""
    region, service = _scope(response.headers)
    action = response._get_action()
    authorize = _AUTHORIZATIONS.get((service, action))
    request = lambda: authorize(Request(response, service, region, _parsed_params(response)))  # noqa: E731
    return refusal(response.current_account, response.headers, f"{service}:{action}",
                   request if authorize is not None else None)


# Query parameters of listings, not subresources.
_S3_LISTING = {"prefix", "delimiter", "encoding-type", "max-keys", "marker", "key-marker", "version-id-marker",
               "list-type", "continuation-token", "start-after", "fetch-owner", "x-id", "max-uploads"}
_S3_BUCKET_ACTIONS = {("encryption", "PUT"): "PutEncryptionConfiguration", ("tagging", "PUT"): "PutBucketTagging",
                      ("publicAccessBlock", "PUT"): "PutBucketPublicAccessBlock",
                      ("versions", "GET"): "ListBucketVersions", ("delete", "POST"): "DeleteObject",
                      ("", "PUT"): "CreateBucket", ("", "DELETE"): "DeleteBucket", ("", "GET"): "ListBucket",
                      ("", "HEAD"): "ListBucket"}


def _s3_action(method: str, querystring: dict, bucket_name: str | None, key_name: str | None) -> str | None:
    """The IAM action of the S3 requests stackctl makes; None (refused) for any other."""
    subresources = sorted(set(querystring) - _S3_LISTING)
    if not bucket_name:
        return None
    if key_name:
        if subresources not in ([], ["versionId"]):
            return None
        if subresources:
            return {"GET": "GetObjectVersion", "HEAD": "GetObjectVersion", "DELETE": "DeleteObjectVersion"}.get(method)
        return {"PUT": "PutObject", "GET": "GetObject", "HEAD": "GetObject", "DELETE": "DeleteObject"}.get(method)
    if len(subresources) > 1:
        return None
    return _S3_BUCKET_ACTIONS.get((subresources[0] if subresources else "", method))


def authorize_s3(self, bucket_name: str | None = None, key_name: str | None = None) -> None:
    """S3 requests (not dispatched through call_action): the bucket or object they act on."""
    # The URL's own query (moto's S3 querystring also carries the headers).
    query = parse_qs(urlparse(self.uri).query, keep_blank_values=True)
    action = _s3_action(self.method, query, bucket_name, key_name)
    resource = f"arn:aws:s3:::{bucket_name or '*'}" + (f"/{key_name}" if key_name else "")
    # A multi-object delete authorizes DeleteObject (and DeleteObjectVersion) on each object.
    objects = resource + "/*" if action == "DeleteObject" and not key_name else resource
    authorize = None if action is None else lambda: (
        [Authorization(f"s3:{action}", objects)]
        + ([Authorization("s3:DeleteObjectVersion", objects)]
           if "delete" in query and b"<VersionId>" in (self.body if isinstance(self.body, bytes)
                                                                   else str(self.body).encode()) else []))
    why = refusal(self.current_account, self.headers, f"s3:{action or self.method}", authorize)
    if why is not None:
        from moto.s3.exceptions import S3ClientError

        raise S3ClientError("AccessDenied", why)
    return _original_authorize_s3(self, bucket_name, key_name)


def log(why: str) -> None:
    if os.environ.get("IAM_DOUBLE_DENIALS"):
        with open(os.environ["IAM_DOUBLE_DENIALS"], "a") as log:
            log.write(why + "\n")


_ERROR_CODES = {"ec2": "UnauthorizedOperation", "sns": "AuthorizationError", "dynamodb": "AccessDeniedException",
                "events": "AccessDeniedException", "ssm": "AccessDeniedException"}


def setup_class(self: BaseResponse, request: Any, full_url: str, headers: Any, *args, **kwargs):
    self._iam_double_request = request
    return _original_setup_class(self, request, full_url, headers, *args, **kwargs)


def call_action(self: BaseResponse):
    why = denial(self)
    if why is None:
        return _original_call_action(self)
    _, service = _scope(self.headers)
    if why.startswith(INVALID_TOKEN):
        code = {"ec2": "AuthFailure", "dynamodb": "UnrecognizedClientException"}.get(service, "InvalidClientTokenId")
    else:
        code = _ERROR_CODES.get(service, "AccessDenied")
    error = AccessDenied(code, why)
    status, headers, body = self.serialized(ActionResult(error))
    # Refusals are 403 (400 for JSON services' AccessDeniedException, as AWS answers).
    status = 400 if error.code == "AccessDeniedException" else 403
    headers, body = self._enrich_response(headers, body)
    return status, headers, body


def install() -> None:
    BaseResponse.setup_class = setup_class
    BaseResponse.call_action = call_action
    S3Response._authenticate_and_authorize_s3_action = authorize_s3

