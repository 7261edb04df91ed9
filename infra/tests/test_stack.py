"""Deploy smoke test: the real templates into moto server via stackctl, then delete.

moto creates most resource types but silently skips AWS::CloudWatch::Alarm,
AWS::Lambda::EventInvokeConfig, AWS::SQS::QueuePolicy and AWS::SNS::Subscription, and its
DynamoDB and Lambda handlers ignore TTL, point-in-time recovery, SSE and architectures:
those are asserted from the
template text. Release builds stay out of `make test`, so the
functions' zips here are placeholders; the templates and the deploy tool are the real ones.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
import re
import shutil
import sys
import tempfile
import time
import unittest
import zipfile
from contextlib import redirect_stdout

INFRA = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))
sys.path.insert(0, str(INFRA / "tests"))

import moto_server  # noqa: E402
import stackctl  # noqa: E402
from cfnlint.decode import cfn_yaml  # noqa: E402

STACK = "ohasmoke"
SERVER = "op-0123456789abcdef0"
TAG = stackctl.STACK_TAG


class DeployedStack(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        moto_server.start(cls)
        cls.artifacts = tempfile.mkdtemp()
        cls.addClassCleanup(shutil.rmtree, cls.artifacts, True)
        for function in stackctl.FUNCTIONS:
            folder = pathlib.Path(cls.artifacts) / function
            folder.mkdir()
            with zipfile.ZipFile(folder / "bootstrap.zip", "w") as z:
                z.writestr("bootstrap", f"#!/bin/sh\necho placeholder for {function}\n")
        import boto3

        cls.boto = boto3.session.Session(region_name="eu-west-1")


    def client(self, name: str):
        return self.boto.client(name)

    def run_stackctl(self, *args: str) -> str:
        out = io.StringIO()
        with redirect_stdout(out):
            code = stackctl.main(["--poll-seconds", "0.1", *args])
        self.assertEqual(code, 0, out.getvalue())
        return out.getvalue()

    def tagged(self) -> set[str]:
        pages = self.client("resourcegroupstaggingapi").get_paginator("get_resources").paginate(
            TagFilters=[{"Key": TAG, "Values": [STACK]}]
        )
        return {r["ResourceARN"] for page in pages for r in page["ResourceTagMappingList"]}

    def test_deploy_protect_and_delete_leave_nothing_behind(self) -> None:
        # A deployment's settings in one file; the region it names is the one in use.
        settings = pathlib.Path(self.artifacts) / "deploy.toml"
        settings.write_text(f'stack = "{STACK}"\nregion = "eu-west-1"\nemail = "ops@example.com"\n'
                            '[parameters]\nFencingPolicy = "terminate"\nFailoverReportMinutes = 20\n')
        out = self.run_stackctl("deploy", "--config", str(settings), "--artifacts", self.artifacts)
        self.assertIn("CREATE_COMPLETE", out)
        self.assertIn("LedgerTableName", out)
        outputs = stackctl.outputs(stackctl.Aws(), STACK)
        self.check_resources(outputs)

        # An upgrade that names nothing keeps every setting (not the template's defaults).
        out = self.run_stackctl("deploy", "--stack", STACK, "--artifacts", self.artifacts)
        self.assertEqual(stackctl.outputs(stackctl.Aws(), STACK), outputs)
        self.assertIn("kept as deployed:", out)
        deployed = stackctl.stack_parameters(stackctl.Aws(), STACK)
        self.assertEqual((deployed["NotificationEmail"], deployed["FencingPolicy"], deployed["FailoverReportMinutes"]),
                         ("ops@example.com", "terminate", "20"))
        # One it names changes, and the change is shown.
        out = self.run_stackctl("deploy", "--stack", STACK, "--artifacts", self.artifacts, "--param", "FencingPolicy=isolate")
        self.assertIn("FencingPolicy: terminate → isolate", out)
        self.assertEqual(stackctl.stack_parameters(stackctl.Aws(), STACK)["NotificationEmail"], "ops@example.com")

        # Only an Outpost of the account (ListOutposts): a mistyped id would alarm at once.
        out = io.StringIO()
        with redirect_stdout(out), contextlib.redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.1", "protect", "--stack", STACK, "--server", SERVER])
        self.assertEqual(code, 1, out.getvalue())
        self.assertIn(f"not protected: {SERVER} is not an Outpost of account 123456789012 in eu-west-1", out.getvalue())
        self.assertEqual(self.run_stackctl("servers", "--stack", STACK).strip(), "")
        ec2 = self.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.7.0.0/16")["Vpc"]["VpcId"]
        ec2.create_subnet(VpcId=vpc, CidrBlock="10.7.1.0/24", OutpostArn=f"arn:aws:outposts:eu-west-1:123456789012:outpost/{SERVER}")
        out = self.run_stackctl("protect", "--config", str(settings), "--server", SERVER)
        self.assertIn(f"{SERVER} is protected", out)
        # What fencing made at run time goes with the stack.
        ec2.create_security_group(GroupName=f"outposts-ha-{STACK}-quarantine", Description="q", VpcId=vpc,
                                  TagSpecifications=[{"ResourceType": "security-group",
                                                      "Tags": [{"Key": stackctl.QUARANTINE_TAG, "Value": STACK}]}])
        self.assertEqual(self.run_stackctl("servers", "--stack", STACK).strip(), SERVER)

        # Refused before CloudFormation starts: a prefix the server stack imports, and more
        # reserved concurrency than the account can hold.
        for param, why in [("AlarmNamePrefix=renamed-", "1 server stack(s) import it"),
                           ("ReservedConcurrency=500", "reserves 2500 for 5 functions")]:
            out = io.StringIO()
            with redirect_stdout(out), contextlib.redirect_stderr(out):
                code = stackctl.main(["--poll-seconds", "0.1", "deploy", "--stack", STACK, "--artifacts",
                                      self.artifacts, "--param", param])
            self.assertEqual(code, 1, out.getvalue())
            self.assertIn(why, out.getvalue())
        self.assertEqual(stackctl.outputs(stackctl.Aws(), STACK), outputs, "nothing changed")


        before = self.tagged()
        # What moto's tagging API reports; functions are checked gone directly below.
        for service in (":dynamodb:", ":logs:", ":sqs:", ":s3:", f":stack/{STACK}-server-"):
            self.assertTrue(any(service in arn for arn in before), f"{service} not among {before}")

        # Not without a confirmation: nothing is deleted.
        out = io.StringIO()
        with redirect_stdout(out), contextlib.redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.1", "delete", "--stack", STACK])
        self.assertEqual(code, 1, out.getvalue())
        self.assertIn("not deleted: confirm with --yes", out.getvalue())
        self.assertEqual(stackctl.outputs(stackctl.Aws(), STACK), outputs, "still there")
        self.run_stackctl("delete", "--stack", STACK, "--yes")
        self.assertEqual(self.tagged(), set(), "resources tagged by the project survived the delete")
        cfn = self.client("cloudformation")
        live = [s["StackName"] for s in cfn.describe_stacks()["Stacks"] if s["StackStatus"] != "DELETE_COMPLETE"]
        self.assertEqual(live, [])
        self.assertEqual(self.client("lambda").list_functions()["Functions"], [])
        self.assertEqual(self.client("dynamodb").list_tables()["TableNames"], [])
        self.assertEqual([b["Name"] for b in self.client("s3").list_buckets()["Buckets"]], [])
        self.assertEqual(self.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}")["logGroups"], [])
        self.assertEqual(self.client("sqs").list_queues().get("QueueUrls", []), [])
        quarantine = ec2.describe_security_groups(Filters=[{"Name": f"tag:{stackctl.QUARANTINE_TAG}", "Values": [STACK]}])
        self.assertEqual(quarantine["SecurityGroups"], [])

    def check_resources(self, outputs: dict[str, str]) -> None:
        ddb = self.client("dynamodb")
        table = ddb.describe_table(TableName=outputs["LedgerTableName"])["Table"]
        self.assertEqual(table["BillingModeSummary"]["BillingMode"], "PAY_PER_REQUEST")
        self.assertEqual({k["AttributeName"]: k["KeyType"] for k in table["KeySchema"]}, {"pk": "HASH", "sk": "RANGE"})

        sns = self.client("sns")
        topic = sns.get_topic_attributes(TopicArn=outputs["NotificationTopicArn"])["Attributes"]
        self.assertTrue(topic.get("KmsMasterKeyId"), topic)

        events = self.client("events")
        bus = outputs["EventBusName"]
        rules = {r["Name"]: r for r in events.list_rules(EventBusName=bus)["Rules"]}
        patterns = {json.loads(r["EventPattern"])["detail-type"][0] if isinstance(json.loads(r["EventPattern"])["detail-type"][0], str) else "anything-but": r for r in rules.values()}
        self.assertIn("RelaunchRequested", patterns)
        self.assertIn("anything-but", patterns)
        lam = self.client("lambda")
        targets = {}
        for r in rules.values():
            for t in events.list_targets_by_rule(Rule=r["Name"], EventBusName=bus)["Targets"]:
                targets[t["Arn"].rsplit(":", 1)[-1]] = t
        self.assertEqual(set(targets), {f"{STACK}-relaunch", f"{STACK}-notifier"})
        default_rules = [r for r in events.list_rules()["Rules"] if r["Name"].startswith(STACK)]
        self.assertEqual(len(default_rules), 7,
                         "alarm changes, instance states, backup schedule, backup status, witness probes, reconcile, "
                         "standby reconcile")
        by_type = {json.loads(r["EventPattern"])["detail-type"][0]: r for r in default_rules if "EventPattern" in r}
        probe_pattern = json.loads(by_type.pop("EC2 Command Status-change Notification")["EventPattern"])
        self.assertEqual(probe_pattern["detail"]["document-name"],
                         [f"{STACK}-witness-probe", {"prefix": "outposts-ha-promote-"}])
        by_source = {json.loads(r["EventPattern"])["source"][0]: r for r in by_type.values()}
        alarm_pattern = json.loads(by_source["aws.cloudwatch"]["EventPattern"])
        self.assertEqual(alarm_pattern["detail"]["alarmName"], [{"prefix": "outposts-ha-"}])
        running_pattern = json.loads(by_source["aws.ec2"]["EventPattern"])
        self.assertEqual(running_pattern["detail"]["state"], ["running", "stopped", "terminated"])
        status_pattern = json.loads(by_source["aws.ssm"]["EventPattern"])
        self.assertEqual(status_pattern["detail"]["Definition"], ["BackupOutpostsServerLinuxInstanceToEBS"])
        self.assertEqual(sorted(status_pattern["detail"]["Status"]), ["Cancelled", "Failed", "Success", "TimedOut"])
        schedules = [r.get("ScheduleExpression") for r in default_rules if r.get("ScheduleExpression")]
        self.assertEqual(sorted(schedules), ["rate(1 hour)", "rate(5 minutes)", "rate(5 minutes)"])
        for r in default_rules:
            arns = [t["Arn"] for t in events.list_targets_by_rule(Rule=r["Name"])["Targets"]]
            standbys = r["Name"].startswith(f"{STACK}-StandbyReconcileRule")
            reconcile = r.get("ScheduleExpression") == "rate(5 minutes)" and not standbys
            probes = json.loads(r.get("EventPattern", "{}")).get("detail-type") == ["EC2 Command Status-change Notification"]
            want = {id(by_source["aws.cloudwatch"]): "alarm-handler", id(by_source["aws.ec2"]): "relaunch"}.get(
                id(r), "alarm-handler" if reconcile else "relaunch" if probes or standbys else "backup-scheduler")
            want = f"{STACK}-{want}"
            self.assertEqual([a.rsplit(":", 1)[-1] for a in arns], [want], r["Name"])

        roles = set()
        for function in stackctl.FUNCTIONS:
            c = lam.get_function_configuration(FunctionName=f"{STACK}-{function}")
            self.assertEqual((c["Runtime"], c["Handler"], c["Timeout"] > 0), ("provided.al2023", "bootstrap", True))
            roles.add(c["Role"])
            env = c["Environment"]["Variables"]
            if function != "notifier":
                self.assertEqual(env["LEDGER_TABLE"], outputs["LedgerTableName"])
                self.assertEqual(env["EVENT_BUS_NAME"], bus)
            else:
                self.assertEqual(env["TOPIC_ARN"], outputs["NotificationTopicArn"])
        self.assertEqual(len(roles), len(stackctl.FUNCTIONS), "one role per function")

        groups = self.client("logs").describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{STACK}-")["logGroups"]
        self.assertEqual(sorted(g["logGroupName"].rsplit("-", 1)[-1] for g in groups), ["handler", "notifier", "operator", "relaunch", "scheduler"])
        self.assertTrue(all(g.get("retentionInDays") == 90 for g in groups), groups)

        sqs = self.client("sqs")
        attrs = sqs.get_queue_attributes(QueueUrl=outputs["FailedEventsQueueUrl"], AttributeNames=["All"])["Attributes"]
        self.assertTrue(attrs.get("KmsMasterKeyId"), attrs)


class FleetOnboarding(unittest.TestCase):
    """make protect SERVERS=stores.csv: 300 servers at once, a bad row reported, the rest protected, and a
    rerun that changes nothing."""

    SERVERS = 300

    @classmethod
    def setUpClass(cls) -> None:
        moto_server.start(cls)
        cls.work = pathlib.Path(tempfile.mkdtemp())
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        for function in stackctl.FUNCTIONS:
            (cls.work / function).mkdir()
            with zipfile.ZipFile(cls.work / function / "bootstrap.zip", "w") as z:
                z.writestr("bootstrap", "#!/bin/sh\n")
        out = io.StringIO()
        with redirect_stdout(out):
            assert stackctl.main(["--poll-seconds", "0.1", "deploy", "--stack", "ohafleet", "--artifacts",
                                  str(cls.work)]) == 0, out.getvalue()
        cls.ids = [f"op-{i:017x}" for i in range(1, cls.SERVERS + 1)]
        moto_server.seed_outposts(cls.ids + ["op-0ffffffffffffff01"], retired=["op-0ffffffffffffff01"])

    def protect(self) -> tuple[int, str, float]:
        out = io.StringIO()
        started = time.time()
        with redirect_stdout(out), contextlib.redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.2", "protect", "--stack", "ohafleet", "--servers",
                                  str(self.work / "stores.csv"), "--parallel", "8"])
        return code, out.getvalue(), time.time() - started

    def test_three_hundred_servers_at_once_with_the_bad_rows_reported(self) -> None:
        rows = [f'{s},"Store {n}, High St",,,' for n, s in enumerate(self.ids, 1)]
        # Mistyped (no such Outpost), retired, a duplicate, and datapoints above the periods.
        rows[17:17] = ["op-0deadbeef00000bad,Store typo,,,", "op-0ffffffffffffff01,Retired,,,",
                       f"{self.ids[0]},Twice,,,", "op-0eeeeeeeeeeeeeee1,Bad alarm,60,3,5"]
        (self.work / "stores.csv").write_text("server_id,site_name,period,evaluation_periods,datapoints\n" + "\n".join(rows) + "\n")
        code, out, took = self.protect()
        self.assertEqual(code, 1, out[-3000:])
        self.assertIn(f"==> {self.SERVERS} server(s) protected ({self.SERVERS} new, 0 changed, 0 unchanged); 4 refused, 0 failed", out)
        self.assertIn("stores.csv:19): op-0deadbeef00000bad is not an Outpost of account 123456789012", out)
        self.assertIn("op-0ffffffffffffff01 is RETIRED, not ACTIVE", out)
        self.assertIn(f"{self.ids[0]} is already on line 2", out)
        self.assertIn("datapoints 5 cannot exceed evaluation_periods 3", out)
        calls = int(re.search(r"; (\d+) CloudFormation calls in", out).group(1))
        print(f"\n    bulk protect: {self.SERVERS} servers in {took:.1f} s, {calls} CloudFormation calls", file=sys.stderr)
        alarms = self.client_alarms()
        self.assertEqual(len(alarms), self.SERVERS)
        self.assertEqual(alarms[f"outposts-ha-{self.ids[41]}"], "Store 42, High St")

        # Idempotent: the same file again changes nothing.
        code, out, took = self.protect()
        self.assertIn(f"==> {self.SERVERS} server(s) protected (0 new, 0 changed, {self.SERVERS} unchanged)", out)
        print(f"    again: {took:.1f} s", file=sys.stderr)

    def client_alarms(self) -> dict[str, str]:
        import boto3

        cw = boto3.session.Session(region_name="eu-west-1").client("cloudwatch")
        found = {}
        for page in cw.get_paginator("describe_alarms").paginate(AlarmNamePrefix="outposts-ha-"):
            for a in page["MetricAlarms"]:
                tags = {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(ResourceARN=a["AlarmArn"])["Tags"]}
                found[a["AlarmName"]] = tags.get(stackctl.TAGS["site_name"], "")
        return found


class TemplateText(unittest.TestCase):
    """What moto skips, read from the templates themselves."""

    main = cfn_yaml.load(str(INFRA / "template.yaml"))
    server = cfn_yaml.load(str(INFRA / "protected-server.yaml"))

    def resources(self, template, kind: str) -> dict:
        return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}

    def test_connected_status_alarm_definition(self) -> None:
        (alarm,) = self.resources(self.server, "AWS::CloudWatch::Alarm").values()
        p = alarm["Properties"]
        self.assertEqual((p["Namespace"], p["MetricName"], p["Statistic"]), ("AWS/Outposts", "ConnectedStatus", "Minimum"))
        self.assertEqual(p["Dimensions"], [{"Name": "OutpostId", "Value": {"Ref": "OutpostId"}}])
        self.assertEqual((p["ComparisonOperator"], p["Threshold"], p["TreatMissingData"]), ("LessThanThreshold", 1, "breaching"))
        self.assertEqual(p["EvaluationPeriods"], {"Ref": "EvaluationPeriods"})
        self.assertEqual(p["DatapointsToAlarm"], {"Ref": "DatapointsToAlarm"})
        self.assertEqual(p["Period"], {"Ref": "PeriodSeconds"})
        name, variables = p["AlarmName"]["Fn::Sub"]
        self.assertEqual(name, "${Prefix}${OutpostId}")
        self.assertEqual(variables["Prefix"], {"Fn::ImportValue": {"Fn::Sub": "${MainStackName}-AlarmNamePrefix"}})
        self.assertEqual(self.server["Parameters"]["OutpostId"]["AllowedPattern"], "^op-[0-9a-f]{17}$")
        # ConnectedStatus is published once a minute: a shorter period reads as missing data.
        self.assertEqual(self.server["Parameters"]["PeriodSeconds"]["AllowedValues"], [60, 300])

    def test_the_key_serves_eventbridge_for_this_bus_and_nothing_it_does_not_need(self) -> None:
        (key,) = self.resources(self.main, "AWS::KMS::Key").values()
        statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
        principals = set()
        for s in statements.values():
            service = s["Principal"].get("Service", [])
            principals.update([service] if isinstance(service, str) else service)
        self.assertNotIn("sns.amazonaws.com", principals)
        self.assertNotIn("lambda.amazonaws.com", principals)
        self.assertEqual(statements["EventBridgeReadsTheKey"]["Action"], "kms:DescribeKey")
        bus = statements["EventBridgeEncryptsTheBus"]
        context = bus["Condition"]["StringEquals"]["kms:EncryptionContext:aws:events:event-bus:arn"]["Fn::Sub"]
        self.assertTrue(context.endswith(":event-bus/${AWS::StackName}-events"), context)
        bus_name = self.resources(self.main, "AWS::Events::EventBus")["EventBus"]["Properties"]["Name"]["Fn::Sub"]
        self.assertEqual(bus_name, "${AWS::StackName}-events", "the key policy names the bus the template creates")

    def test_backup_schedule_accepts_only_what_put_rule_accepts(self) -> None:
        pattern = re.compile(self.main["Parameters"]["BackupSchedule"]["AllowedPattern"])
        for good in ["rate(1 hour)", "rate(15 minutes)", "rate(1 day)", "cron(0 */4 * * ? *)"]:
            self.assertRegex(good, pattern)
        for bad in ["rate(1 hours)", "rate(0 minutes)", "rate(5 minute)", "rate(2 weeks)", "cron(0 4 * * ?)", "rate()"]:
            self.assertNotRegex(bad, pattern)

    def test_relaunch_launches_only_from_templates_and_uses_keys_only_through_ec2(self) -> None:
        statements = self.main["Resources"]["RelaunchRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        launching = [s for s in statements if s.get("Action") == "ec2:RunInstances"]
        on_instances = [s for s in launching if "instance/*" in json.dumps(s["Resource"])]
        self.assertEqual(len(on_instances), 1, "an instance is launched by one statement only")
        template = on_instances[0]["Condition"]["ArnLike"]["ec2:LaunchTemplate"]["Fn::Sub"]
        self.assertTrue(template.endswith(":launch-template/*"), template)
        keys = [s for s in statements if "kms:CreateGrant" in json.dumps(s.get("Action"))]
        self.assertEqual(len(keys), 1)
        self.assertEqual(keys[0]["Condition"]["StringEquals"]["kms:ViaService"], {"Fn::Sub": "ec2.${AWS::Region}.amazonaws.com"})
        public = [s for s in statements if s.get("Action") == "ssm:GetParameters"]
        self.assertEqual([s["Resource"]["Fn::Sub"].rsplit(":", 1)[1] for s in public], ["parameter/aws/service/*"])
        bus = self.main["Resources"]["EventBus"]["Properties"]
        # Its dead letters do not depend on the key whose failure sends them there.
        self.assertEqual(bus["DeadLetterConfig"], {"Arn": {"Fn::GetAtt": ["BusDeadLetterQueue", "Arn"]}})
        queue = self.main["Resources"]["BusDeadLetterQueue"]["Properties"]
        self.assertTrue(queue["SqsManagedSseEnabled"])
        self.assertNotIn("KmsMasterKeyId", queue)
        admitted = self.main["Resources"]["BusDeadLetterQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        self.assertEqual(admitted["Condition"]["ArnEquals"]["aws:SourceArn"], {"Fn::GetAtt": ["EventBus", "Arn"]})
        self.assertEqual(self.main["Parameters"]["ReservedConcurrency"]["Default"], 0)

    def test_the_runbook_gets_a_role_of_the_stack_unless_one_is_given(self) -> None:
        role = self.main["Resources"]["BackupAutomationRole"]
        self.assertEqual(role["Condition"], "CreatesAutomationRole")
        self.assertEqual(self.main["Conditions"]["CreatesAutomationRole"], {"Fn::Equals": [{"Ref": "BackupAutomationRoleArn"}, ""]})
        trust = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        self.assertEqual([s["Principal"] for s in trust], [{"Service": "ssm.amazonaws.com"}])
        granted = set()
        for statement in role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
            granted |= set(statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]])
        # The runbook documentation's "Required IAM Permissions", every one.
        documented = {"ec2:DescribeImages", "ec2:DescribeSnapshots", "ec2:DescribeVolumes", "ec2:DescribeSubnets",
                      "ec2:DescribeLaunchTemplates", "ec2:DescribeInstances", "ec2:DescribeInstanceStatus",
                      "ec2:DescribeInstanceTypes", "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups",
                      "ec2:DescribeKeyPairs", "ssm:DescribeInstanceInformation", "ssm:DescribeAutomationExecutions",
                      "ssm:GetAutomationExecution", "ssm:ListCommandInvocations", "ssm:ListCommands",
                      "ssm:GetParameters", "cloudformation:DescribeStacks", "cloudformation:DescribeStackResource",
                      "cloudformation:DescribeStackEvents", "ec2:CreateSecurityGroup", "ec2:RevokeSecurityGroupEgress",
                      "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress", "ec2:RunInstances",
                      "ec2:TerminateInstances", "ec2:CreateVolume", "ec2:DeleteVolume", "ec2:ModifyVolume",
                      "ec2:CreateKeyPair", "ec2:DeleteKeyPair", "ec2:CreateLaunchTemplate", "ec2:CreateTags",
                      "ec2:AttachVolume", "ec2:StartInstances", "ec2:StopInstances", "ec2:CreateSnapshot",
                      "ec2:RegisterImage", "ec2:DeleteSecurityGroup", "ec2:DeleteLaunchTemplate", "ssm:SendCommand",
                      "ssm:PutParameter", "ssm:DeleteParameter", "cloudformation:CreateStack",
                      "cloudformation:DeleteStack"}
        self.assertEqual(granted, documented)
        # backup-scheduler passes the given role, else this one, and says which.
        scheduler = self.main["Resources"]["BackupSchedulerRole"]["Properties"]["Policies"][0]["PolicyDocument"]
        (passing,) = [s for s in scheduler["Statement"] if s.get("Action") == "iam:PassRole"]
        chosen = {"Fn::If": ["HasAutomationRole", {"Ref": "BackupAutomationRoleArn"}, {"Fn::GetAtt": ["BackupAutomationRole", "Arn"]}]}
        self.assertEqual(passing["Resource"], chosen)
        env = self.main["Resources"]["BackupSchedulerFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(env["BACKUP_AUTOMATION_ROLE_ARN"], chosen)

    def test_every_function_retries_async_twice_into_the_encrypted_failed_events_queue(self) -> None:
        functions = self.resources(self.main, "AWS::Lambda::Function")
        configs = self.resources(self.main, "AWS::Lambda::EventInvokeConfig").values()
        covered = {c["Properties"]["FunctionName"]["Ref"]: c["Properties"] for c in configs}
        self.assertEqual(set(covered), set(functions))
        for props in covered.values():
            self.assertEqual(props["MaximumRetryAttempts"], 2)
            self.assertEqual(props["DestinationConfig"]["OnFailure"]["Destination"], {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]})
        queue = self.main["Resources"]["FailedEventsQueue"]["Properties"]
        self.assertEqual(queue["KmsMasterKeyId"], {"Ref": "EncryptionKey"})

    def test_each_role_grants_exactly_the_ledger_calls_its_function_makes(self) -> None:
        """Read from the code: which DynamoDB operations each Ledger method makes (directly or
        through another), which Ledger methods each function calls; the role must grant
        exactly those on the ledger table, no fewer (a call that fails in AWS) and no more."""
        repo = INFRA.parent
        ledger = (repo / "crates/ha-ports/src/ledger.rs").read_text()
        impl = ledger[ledger.index("impl Ledger {"):]
        bodies = dict(re.findall(r"\n    (?:pub )?(?:async )?fn (\w+)[^{]*\{(.*?)(?=\n    (?:pub )?(?:async )?fn |\n}\n)", impl, re.S))
        # The ledger acts through its Table port; the DynamoDB adapter makes one call per method.
        adapter = (repo / "crates/ha-aws/src/ledger.rs").read_text()
        self.assertIn(".get_item()", adapter.split("async fn get(")[1].split("async fn")[0])
        sdk = {"table.get": "GetItem", "table.put": "PutItem", "table.update": "UpdateItem",
               "table.delete": "DeleteItem", "table.query": "Query"}

        def actions(method: str, seen: set[str]) -> set[str]:
            if method in seen or method not in bodies:
                return set()
            seen.add(method)
            body = bodies[method]
            found = {a for call, a in sdk.items() if re.search(r"\." + call.replace(".", r"\s*\.") + r"\(", body)}
            for inner in re.findall(r"self\s*\.(\w+)\(", body):
                found |= actions(inner, seen)
            return found

        roles = {"alarm-handler": "AlarmHandlerRole", "relaunch": "RelaunchRole",
                 "backup-scheduler": "BackupSchedulerRole", "operator": "OperatorRole", "notifier": "NotifierRole"}
        self.assertEqual(set(roles), set(stackctl.FUNCTIONS))
        for function, role in roles.items():
            code = "".join(f.read_text() for f in (repo / "crates" / function / "src").rglob("*.rs"))
            called = set(re.findall(r"\bledger\s*\.(\w+)\(", code))
            needed = set().union(*(actions(m, set()) for m in called)) if called else set()
            granted = set()
            for statement in self.main["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]:
                if "Action" not in statement:  # a conditional statement (Fn::If): not about the ledger
                    continue
                listed = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if statement["Resource"] == {"Fn::GetAtt": ["LedgerTable", "Arn"]}:
                    granted |= {a.split(":", 1)[1] for a in listed if a.startswith("dynamodb:")}
            self.assertEqual(granted, needed, f"{role}: the code calls {sorted(called)}")

    def test_every_rule_target_has_a_dead_letter_queue_the_queue_policy_admits(self) -> None:
        rules = self.resources(self.main, "AWS::Events::Rule")
        admitted = self.main["Resources"]["FailedEventsQueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
        # A conditional rule's ARN is admitted under its condition (Fn::If).
        sources = [(s["Fn::If"][1] if "Fn::If" in s else s)["Fn::GetAtt"][0]
                   for s in admitted["Condition"]["ArnEquals"]["aws:SourceArn"]]
        self.assertEqual(sorted(sources), sorted(rules))
        for rule in rules.values():
            for target in rule["Properties"]["Targets"]:
                self.assertEqual(target["DeadLetterConfig"]["Arn"], {"Fn::GetAtt": ["FailedEventsQueue", "Arn"]})

    def test_functions_log_json_to_their_own_group(self) -> None:
        architecture = self.main["Parameters"]["Architecture"]
        self.assertEqual((architecture["Default"], architecture["AllowedValues"]), ("arm64", ["arm64", "x86_64"]))
        for name, fn in self.resources(self.main, "AWS::Lambda::Function").items():
            self.assertEqual(fn["Properties"]["Architectures"], [{"Ref": "Architecture"}], name)
            logging = fn["Properties"]["LoggingConfig"]
            self.assertEqual(logging["LogFormat"], "JSON", name)
            self.assertEqual(logging["LogGroup"], {"Ref": name.replace("Function", "LogGroup")})

    def test_traced_functions_may_write_traces(self) -> None:
        # Lambda refuses to create an actively traced function whose role cannot write to X-Ray.
        for name, fn in self.resources(self.main, "AWS::Lambda::Function").items():
            if fn["Properties"].get("TracingConfig", {}).get("Mode") != "Active":
                continue
            role = self.main["Resources"][fn["Properties"]["Role"]["Fn::GetAtt"][0]]
            actions = set()
            for policy in role["Properties"]["Policies"]:
                for statement in policy["PolicyDocument"]["Statement"]:
                    if "Fn::If" in statement:
                        statement = statement["Fn::If"][1]
                    acts = statement["Action"]
                    actions.update([acts] if isinstance(acts, str) else acts)
            self.assertLessEqual({"xray:PutTraceSegments", "xray:PutTelemetryRecords"}, actions, name)

    def test_ledger_expires_items_and_can_be_restored(self) -> None:
        p = self.main["Resources"]["LedgerTable"]["Properties"]
        self.assertEqual(p["TimeToLiveSpecification"], {"AttributeName": "expires_at", "Enabled": True})
        self.assertEqual(p["PointInTimeRecoverySpecification"], {"PointInTimeRecoveryEnabled": True})
        self.assertEqual(p["SSESpecification"]["KMSMasterKeyId"], {"Ref": "EncryptionKey"})

    def test_email_subscription_follows_the_parameter(self) -> None:
        sub = self.main["Resources"]["NotificationEmailSubscription"]
        self.assertEqual(sub["Condition"], "HasEmail")
        self.assertEqual(sub["Properties"]["Endpoint"], {"Ref": "NotificationEmail"})



class Paging(unittest.TestCase):
    """The paging rule turns an OnCallAlert into the request PagerDuty's Events API v2
    documents (developer.pagerduty.com, "Send an Alert Event"): routing_key, event_action
    (trigger, acknowledge or resolve), dedup_key (at most 255 characters), and a payload
    with summary (at most 1,024), source and severity (critical, error, warning or info),
    an optional ISO 8601 timestamp; links each with an href."""

    main = cfn_yaml.load(str(INFRA / "template.yaml"))

    def rendered(self, detail: dict) -> dict:
        """EventBridge's input transformer on an event, with the connection's body
        parameters added to the JSON body, as the API destination sends it."""
        target = self.main["Resources"]["PagingRule"]["Properties"]["Targets"][0]
        transformer = target["InputTransformer"]
        body = transformer["InputTemplate"]
        for name, path in transformer["InputPathsMap"].items():
            self.assertTrue(path.startswith("$.detail."), path)
            body = body.replace(f"<{name}>", json.dumps(detail[path.removeprefix("$.detail.")]))
        request = json.loads(body)
        connection = self.main["Resources"]["PagerDutyConnection"]["Properties"]
        for p in connection["AuthParameters"]["InvocationHttpParameters"]["BodyParameters"]:
            self.assertTrue(p["IsValueSecret"], "the routing key is the connection's secret")
            request[p["Key"]] = "R0UT1NGKEY0123456789"
        return request

    def assert_pagerduty_v2(self, request: dict) -> None:
        self.assertEqual(request["routing_key"], "R0UT1NGKEY0123456789")
        self.assertIn(request["event_action"], ("trigger", "acknowledge", "resolve"))
        self.assertTrue(0 < len(request["dedup_key"]) <= 255)
        payload = request["payload"]
        self.assertTrue(0 < len(payload["summary"]) <= 1024)
        self.assertTrue(payload["source"])
        self.assertIn(payload["severity"], ("critical", "error", "warning", "info"))
        datetime_ok = re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:?\d\d)", payload["timestamp"])
        self.assertTrue(datetime_ok, payload["timestamp"])
        for link in request["links"]:
            self.assertTrue(link["href"].startswith("https://"), link)

    def test_an_alert_becomes_a_pagerduty_events_v2_request(self) -> None:
        sample = json.loads((INFRA.parent / "events/contract/OnCallAlert.json").read_text())
        request = self.rendered(sample["detail"])
        self.assert_pagerduty_v2(request)
        self.assertEqual(request["dedup_key"], sample["detail"]["incident_id"], "one PagerDuty alert per incident")
        resolve = dict(sample["detail"], action="resolve", severity="info")
        self.assertEqual(self.rendered(resolve)["event_action"], "resolve")
        rule = self.main["Resources"]["PagingRule"]["Properties"]
        self.assertEqual(rule["EventPattern"]["detail-type"], ["OnCallAlert"])
        self.assertEqual(self.main["Resources"]["PagerDutyDestination"]["Properties"]["InvocationEndpoint"],
                         "https://events.pagerduty.com/v2/enqueue")

    def test_a_bad_alert_breaks_the_shape_check(self) -> None:
        sample = json.loads((INFRA.parent / "events/contract/OnCallAlert.json").read_text())
        with self.assertRaises(AssertionError):
            self.assert_pagerduty_v2(self.rendered(dict(sample["detail"], severity="urgent")))

    def test_the_email_filter_is_the_one_the_demo_and_the_tests_subscribe_with(self) -> None:
        import demo  # noqa: PLC0415
        mapping = {k: v["Severities"] for k, v in self.main["Mappings"]["SeverityFilter"].items()}
        policy = self.main["Resources"]["NotificationEmailSubscription"]["Properties"]["FilterPolicy"]["$or"]
        self.assertEqual(policy[1], {"event_type": ["IncidentOpened", "FailoverCompleted", "IncidentClosed"]})
        self.assertEqual(policy[2], {"severity": [{"exists": False}]})
        for minimum, severities in mapping.items():
            self.assertEqual(demo.email_filter_policy(minimum),
                             {"$or": [{"severity": severities}, policy[1], policy[2]]})


class DeployerPolicy(unittest.TestCase):
    """infra/deployer-policy.json grants what stackctl calls and what CloudFormation needs
    for every resource type the templates declare (read from the code and the templates;
    running the commands under it needs IAM enforced in the emulator, not yet done)."""

    policy = json.loads((INFRA / "deployer-policy.json").read_text())
    granted = {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}

    # boto3 client attribute in stackctl → IAM service prefix; calls whose action is not the
    # operation's own name.
    services = {"cfn": "cloudformation", "s3": "s3", "ssm": "ssm", "ec2": "ec2", "lam": "lambda", "cloudwatch": "cloudwatch",
                "sqs": "sqs", "outposts": "outposts"}
    renamed = {
        "s3.head_bucket": ["s3:ListBucket"], "s3.head_object": ["s3:GetObject"],
        "s3.put_bucket_encryption": ["s3:PutEncryptionConfiguration"],
        "s3.put_public_access_block": ["s3:PutBucketPublicAccessBlock"],
        "s3.delete_objects": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
        "s3.list_object_versions": ["s3:ListBucketVersions"], "lambda.invoke": ["lambda:InvokeFunction"],
    }
    # What CloudFormation calls, as the deployer, to create, update and delete each type.
    needs = {
        "AWS::CloudWatch::Alarm": ["cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms"],
        "AWS::CloudWatch::Dashboard": ["cloudwatch:PutDashboard", "cloudwatch:DeleteDashboards", "cloudwatch:GetDashboard"],
        "AWS::DynamoDB::Table": ["dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:DescribeTable",
                                 "dynamodb:UpdateTimeToLive", "dynamodb:UpdateContinuousBackups", "dynamodb:TagResource"],
        "AWS::Events::EventBus": ["events:CreateEventBus", "events:DeleteEventBus", "events:DescribeEventBus",
                                  "events:TagResource"],
        "AWS::Events::Connection": ["events:CreateConnection", "events:DeleteConnection", "events:DescribeConnection",
                                    "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret",
                                    "secretsmanager:DescribeSecret", "secretsmanager:PutSecretValue"],
        "AWS::Events::ApiDestination": ["events:CreateApiDestination", "events:DeleteApiDestination",
                                        "events:DescribeApiDestination"],
        "AWS::Events::Rule": ["events:PutRule", "events:DeleteRule", "events:DescribeRule", "events:PutTargets",
                              "events:RemoveTargets"],
        "AWS::IAM::Role": ["iam:CreateRole", "iam:DeleteRole", "iam:GetRole", "iam:PutRolePolicy",
                           "iam:DeleteRolePolicy", "iam:TagRole"],
        "AWS::KMS::Key": ["kms:CreateKey", "kms:DescribeKey", "kms:PutKeyPolicy", "kms:EnableKeyRotation",
                          "kms:ScheduleKeyDeletion", "kms:TagResource"],
        "AWS::Lambda::EventInvokeConfig": ["lambda:PutFunctionEventInvokeConfig", "lambda:DeleteFunctionEventInvokeConfig"],
        "AWS::Lambda::Function": ["lambda:CreateFunction", "lambda:DeleteFunction", "lambda:GetFunction",
                                  "lambda:PutFunctionConcurrency", "lambda:TagResource", "iam:PassRole"],
        "AWS::Lambda::Permission": ["lambda:AddPermission", "lambda:RemovePermission"],
        "AWS::Logs::LogGroup": ["logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy",
                                "logs:AssociateKmsKey", "logs:TagResource"],
        "AWS::SNS::Subscription": ["sns:Subscribe", "sns:Unsubscribe"],
        "AWS::SNS::Topic": ["sns:CreateTopic", "sns:DeleteTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes",
                            "sns:TagResource"],
        "AWS::SQS::Queue": ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:GetQueueAttributes", "sqs:SetQueueAttributes",
                            "sqs:TagQueue"],
        "AWS::SQS::QueuePolicy": ["sqs:SetQueueAttributes"],
        "AWS::SSM::Document": ["ssm:CreateDocument", "ssm:DeleteDocument", "ssm:UpdateDocument",
                               "ssm:UpdateDocumentDefaultVersion", "ssm:DescribeDocument", "ssm:GetDocument",
                               "ssm:AddTagsToResource"],
    }

    def test_every_call_stackctl_makes_is_granted(self) -> None:
        code = (INFRA / "stackctl.py").read_text()
        calls = set(re.findall(r"aws\.(\w+)\.(\w+)\(", code)) | set(
            re.findall(r"aws\.(\w+)\.get_paginator\(\"(\w+)\"\)", code))
        calls = {(c, op) for c, op in calls if op != "get_paginator"}
        self.assertGreater(len(calls), 15, calls)
        for client, op in sorted(calls):
            service = self.services[client]
            actions = self.renamed.get(f"{service}.{op}") or [f"{service}:{''.join(w.title() for w in op.split('_'))}"]
            missing = [a for a in actions if a not in self.granted]
            self.assertEqual(missing, [], f"stackctl calls {client}.{op}")

    def test_every_resource_type_of_the_templates_can_be_created_and_deleted(self) -> None:
        types = {r["Type"] for t in (TemplateText.main, TemplateText.server) for r in t["Resources"].values()}
        self.assertEqual(types - set(self.needs), set(), "a new resource type: list what CloudFormation calls for it")
        for kind in sorted(types):
            self.assertEqual([a for a in self.needs[kind] if a not in self.granted], [], kind)

    def test_no_action_is_a_wildcard(self) -> None:
        self.assertEqual([a for a in self.granted if "*" in a], [])


class StackctlInput(unittest.TestCase):
    def test_delete_goes_on_only_when_the_stack_name_is_typed(self) -> None:
        from unittest import mock
        with mock.patch.object(sys, "stdin", mock.Mock(isatty=lambda: True)):
            with self.assertRaisesRegex(stackctl.StackError, "not deleted: 'prod' is not ohasmoke"):
                stackctl.confirm_delete("ohasmoke", False, answer=lambda _: "prod")
            stackctl.confirm_delete("ohasmoke", False, answer=lambda _: " ohasmoke\n")
        stackctl.confirm_delete("ohasmoke", True, answer=lambda _: self.fail("--yes asks nothing"))

    def test_bad_names_are_refused_with_a_reason(self) -> None:
        for bad in ["op-123", "OP-0123456789ABCDEF0", "i-0123456789abcdef0"]:
            with self.assertRaisesRegex(stackctl.StackError, "not an Outposts server id"):
                stackctl.check_server_id(bad)
        with self.assertRaisesRegex(stackctl.StackError, "must start with a letter"):
            stackctl.check_stack_name("1-bad")
        self.assertEqual(stackctl.server_stack_name("oha", SERVER), f"oha-server-{SERVER}")
        long = stackctl.artifacts_bucket_name("a" * 24 + "-b" * 8, "123456789012", "ap-southeast-2")
        self.assertLessEqual(len(long), 63)
        self.assertTrue(long.endswith("-artifacts-123456789012-ap-southeast-2"), long)
        self.assertNotIn("--", long)

    def test_the_region_is_never_guessed(self) -> None:
        self.assertEqual(stackctl.region_of({"AWS_REGION": "eu-west-1"}, None), "eu-west-1")
        self.assertEqual(stackctl.region_of({"AWS_REGION": "eu-west-1"}, "us-east-1"), "eu-west-1")
        self.assertEqual(stackctl.region_of({}, "ap-south-1"), "ap-south-1")
        with self.assertRaisesRegex(stackctl.StackError, "no AWS region"):
            stackctl.region_of({}, None)

    def test_drill_verdicts_read_as_a_table(self) -> None:
        table = stackctl.drill_table([
            {"workload": "pos", "ready": True, "destination": "subnet-0a", "restored_from": {"image_id": "ami-1"}, "problems": []},
            {"workload": "lost", "ready": False, "destination": None, "restored_from": None, "problems": ["subnet-0b: does not exist"]},
        ]).splitlines()
        self.assertEqual(table[0].split(), ["workload", "verdict", "destination", "backup", "problems"])
        self.assertEqual(table[1].split(), ["pos", "READY", "subnet-0a", "ami-1", "-"])
        self.assertEqual(table[2].split()[:5], ["lost", "NOT", "READY", "-", "-"])
        self.assertTrue(table[2].endswith("subnet-0b: does not exist"))

    def test_a_settings_file_is_read_or_refused_with_where_and_why(self) -> None:
        import deploy_settings  # noqa: PLC0415

        folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder, True)
        path = folder / "deploy.toml"
        path.write_text('stack = "prod"\narchitecture = "x86_64"\n[parameters]\nFencingPolicy = "notify"\nReservedConcurrency = 0\n')
        settings = deploy_settings.load(path)
        self.assertEqual((settings["stack"], settings["architecture"], settings["region"]), ("prod", "x86_64", None))
        self.assertEqual(settings["parameters"], {"FencingPolicy": "notify", "ReservedConcurrency": "0"})
        for text, why in (('stak = "x"\n', "unknown setting\\(s\\) stak"), ('architecture = "arm"\n', "arm64 or x86_64"),
                          ("stack = \n", "not TOML"), ("parameters = 3\n", "must be a table")):
            path.write_text(text)
            with self.assertRaisesRegex(deploy_settings.SettingsError, why):
                deploy_settings.load(path)
        with self.assertRaisesRegex(deploy_settings.SettingsError, "no such settings file"):
            deploy_settings.load(folder / "missing.toml")
        # Checked against the template and the command line before anything is called.
        path.write_text('stack = "prod"\nregion = "eu-west-1"\n[parameters]\nFencingPolicyy = "notify"\n')
        args = stackctl.parser().parse_args(["deploy", "--config", str(path), "--artifacts", "x"])
        with self.assertRaisesRegex(stackctl.StackError, "FencingPolicyy is not a parameter of infra/template.yaml"):
            stackctl.settle(args, {})
        args = stackctl.parser().parse_args(["status", "--config", str(path), "--stack", "other"])
        with self.assertRaisesRegex(stackctl.StackError, "STACK=other but .* names stack prod"):
            stackctl.settle(args, {})
        args = stackctl.parser().parse_args(["status", "--config", str(path)])
        with self.assertRaisesRegex(stackctl.StackError, "AWS_REGION is us-east-1 but .* names region eu-west-1"):
            stackctl.settle(args, {"AWS_REGION": "us-east-1"})
        self.assertEqual(stackctl.settle(args, {}), "eu-west-1")
        self.assertEqual(args.stack, "prod")
        path.write_text('email = "a@example.com"\n[parameters]\nFencingPolicy = "notify"\n')
        args = stackctl.parser().parse_args(["deploy", "--config", str(path), "--artifacts", "x", "--param",
                                             "FencingPolicy=isolate"])
        stackctl.settle(args, {})
        self.assertEqual((args.stack, args.email), ("outposts-ha", "a@example.com"))
        self.assertEqual(args.param, ["FencingPolicy=notify", "FencingPolicy=isolate"], "the command line comes last, and wins")

    def test_a_servers_file_without_its_header_is_refused(self) -> None:
        folder = pathlib.Path(tempfile.mkdtemp())
        self.addCleanup(shutil.rmtree, folder, True)
        (folder / "s.csv").write_text(f"{SERVER},Store 1\n")
        with self.assertRaisesRegex(stackctl.StackError, "the first line must name the columns, server_id first"):
            stackctl.read_servers_file(str(folder / "s.csv"))
        (folder / "s.csv").write_text(f"server_id,site_name\n# a comment\n{SERVER},Store 1\nop-1,Bad\n{SERVER[:-1]}1,x,extra\n")
        rows, bad = stackctl.read_servers_file(str(folder / "s.csv"))
        self.assertEqual([(r.server, r.name) for r in rows], [(SERVER, "Store 1")])
        self.assertEqual([why for _, why in bad], ["'op-1' is not an Outposts server id (op- followed by 17 lowercase hex digits)",
                                                   "more columns than the header names: ['extra']"])

    def test_status_rows_say_what_needs_attention(self) -> None:
        import datetime

        now = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.timezone.utc)
        fine = {"server_id": SERVER, "workloads": 3, "unusable": [], "stateful": 1, "oldest_backup_age_seconds": 3600,
                "missing_backups": [], "last_drill": {"drilled_at": "2026-12-01T06:00:00Z", "ready": 3, "not_ready": []},
                "open_incident": None}
        other = "op-0fedcba9876543210"
        troubled = {**fine, "server_id": other, "unusable": ["kiosk: no subnets"], "oldest_backup_age_seconds": 3 * 86400,
                    "last_drill": {"drilled_at": "2026-11-20T06:00:00Z", "ready": 2, "not_ready": ["db: no backup"]},
                    "open_incident": "inc-0123456789abcdef01234567"}
        away = {**fine, "server_id": "op-0bbbbbbbbbbbbbbb2", "away": ["pos: i-0123456789abcdef0"]}
        servers = [{"server": SERVER, "site": "Store 17"}, {"server": other, "site": ""},
                   {"server": "op-0aaaaaaaaaaaaaaa1", "site": ""}, {"server": away["server_id"], "site": ""}]
        alarms = {SERVER: "OK", other: "ALARM", away["server_id"]: "OK"}
        statuses = {SERVER: fine, other: troubled, away["server_id"]: away}
        rows = stackctl.status_rows(servers, alarms, statuses, 86400, now, drills_scheduled=True)
        self.assertEqual([rows[0][c] for c in ("site", "alarm", "workloads", "backup", "drill", "incident", "attention")],
                         ["Store 17", "OK", "3 ok", "1h", "READY 1d ago", "-", ""])
        self.assertEqual(rows[1]["workloads"], "3 ok, 1 unusable")
        self.assertEqual(rows[1]["attention"].split("; "), [
            "alarm ALARM", "1 unusable: kiosk: no subnets", "backup 3d old (RPO 1d)", "drill: db: no backup",
            "last drill 12d ago", "incident inc-0123456789abcdef01234567 open (make incident SERVER=op-0fedcba9876543210)"])
        self.assertEqual(rows[2]["alarm"], "MISSING")
        self.assertIn("the operator function did not answer for it", rows[2]["attention"])
        self.assertEqual(rows[3]["attention"], "1 on a replacement (pos: i-0123456789abcdef0): "
                                               "make failback SERVER=op-0bbbbbbbbbbbbbbb2, stateful ones by the runbook")
        # Without a drill schedule an old drill is shown, not flagged.
        unscheduled = stackctl.status_rows(servers, alarms, statuses, 86400, now)
        self.assertNotIn("last drill", unscheduled[1]["attention"])
        self.assertIn("drill: db: no backup", unscheduled[1]["attention"])

    def test_an_incident_reads_as_a_timeline(self) -> None:
        story = {"incident_id": "inc-1", "server_id": SERVER, "site_name": "Store 17", "status": "closed",
                 "detected_at": "2026-12-02T10:00:00.500Z", "recovered_at": "2026-12-02T10:30:00Z", "summary": "done",
                 "workloads": [{"workload": "pos", "status": "launched", "replacement_instance_id": "i-2",
                                "subnet_id": "subnet-1", "launch_accepted_at": "2026-12-02T10:00:02Z",
                                "serving_at": "2026-12-02T10:01:00Z"},
                               {"workload": "db", "status": "failed"}],
                 "told": [{"kind": "opened", "at": "2026-12-02T10:00:00Z"},
                          {"kind": "fenced", "subject": "i-1", "at": "2026-12-02T10:30:05Z"},
                          {"kind": "closed", "at": "2026-12-02T10:30:06Z"}]}
        lines = stackctl.incident_timeline(story).splitlines()
        self.assertEqual(lines[0], f"==> incident inc-1 (closed): Store 17 ({SERVER})")
        whats = [line.split(" s  ", 1)[1] for line in lines[1:-1]]
        self.assertEqual(whats, ["detected: the server's alarm went to ALARM", "db: not relaunched (failed)", "opening told",
                                 "pos: i-2 launched in subnet-1", "pos: serving", "server back: its alarm went to OK",
                                 "original i-1 fenced (told)", "closing told"])
        self.assertIn("+    1.5 s  pos: i-2 launched", lines[4])
        self.assertEqual(lines[-1], "    summary: done")

    def test_maintenance_times_are_read_or_refused(self) -> None:
        import datetime

        now = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.timezone.utc)
        self.assertEqual(stackctl.parse_until("now", now), now)
        self.assertEqual(stackctl.parse_until("+4h", now), now + datetime.timedelta(hours=4))
        self.assertEqual(stackctl.parse_until("+30m", now), now + datetime.timedelta(minutes=30))
        self.assertEqual(stackctl.parse_until("2026-11-23T06:00Z", now), datetime.datetime(2026, 11, 23, 6, 0, tzinfo=datetime.timezone.utc))
        for bad, why in (("tomorrow", "not now"), ("+4w", "not now"), ("2026-11-23T06:00", "no time zone")):
            with self.assertRaisesRegex(stackctl.StackError, why):
                stackctl.parse_until(bad, now)


if __name__ == "__main__":
    unittest.main()
