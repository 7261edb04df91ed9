"""The operator commands end to end: stackctl → the deployed function → AWS, and back:
stackctl → the operator function (maintenance, unfence, an incident's story). The stack
is deployed into moto by stackctl with the functions' debug binaries (the
build `cargo test` shares); the functions run under the project's local Lambda runner
(tests/emulator/local_lambda.py), which stackctl's `lambda.invoke` reaches through
AWS_ENDPOINT_URL_LAMBDA. Also: the tooling holds no ledger key and no tag name of its own.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import pathlib
import re
import shutil
import sys
import tempfile
import time
import unittest
import zipfile
from contextlib import redirect_stderr, redirect_stdout

INFRA = pathlib.Path(__file__).resolve().parents[1]
REPO = INFRA.parent
sys.path.insert(0, str(INFRA))
sys.path.insert(0, str(INFRA / "tests"))
sys.path.insert(0, str(REPO / "tests" / "emulator"))

import local_lambda  # noqa: E402
import moto_server  # noqa: E402
import stackctl  # noqa: E402

STACK = "ohaops"
SERVER = "op-0123456789abcdef0"
INCIDENT = "inc-0123456789abcdef01234567"
OTHER_INCIDENT = "inc-89abcdef0123456789abcdef"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or pathlib.Path.home() / ".cache/outposts-ha/target")


class OperatorCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.work = pathlib.Path(tempfile.mkdtemp(prefix="operator-commands-"))
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        cls.aws_env = moto_server.start(cls)

        artifacts = cls.work / "zips"
        for function in stackctl.FUNCTIONS:
            binary = TARGET / "debug" / function
            if not binary.is_file():
                raise AssertionError(f"{binary} is missing: run `make functions-debug` (make test does)")
            (artifacts / function).mkdir(parents=True)
            with zipfile.ZipFile(artifacts / function / "bootstrap.zip", "w") as z:
                z.write(binary, "bootstrap")
        cls.stackctl_quietly("deploy", "--stack", STACK, "--artifacts", str(artifacts))

        import boto3

        cls.boto = boto3.session.Session(region_name="eu-west-1")
        lam = cls.boto.client("lambda")
        cls.runner = local_lambda.LocalLambda(cls.work / "logs").start()
        for function in stackctl.FUNCTIONS:
            configuration = lam.get_function_configuration(FunctionName=f"{STACK}-{function}")
            env = {**configuration.get("Environment", {}).get("Variables", {}), **cls.aws_env,
                   **local_lambda.role_credentials(cls.boto, configuration)}
            cls.runner.add(configuration["FunctionName"], TARGET / "debug" / function, env)
        cls.addClassCleanup(cls.runner.stop)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = cls.runner.url
        cls.told = cls.bus_to_queue()

    @classmethod
    def bus_to_queue(cls) -> str:
        """moto's PutEvents fails while a rule targets a function: the project bus's rules
        deliver to one queue instead, which also shows what the functions told."""
        events, sqs = cls.boto.client("events"), cls.boto.client("sqs")
        url = sqs.create_queue(QueueName=f"{STACK}-told")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = stackctl.outputs(stackctl.Aws(), STACK)["EventBusName"]
        for rule in events.list_rules(EventBusName=bus)["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
            ids = [t["Id"] for t in targets if ":function:" in t["Arn"]]
            if ids:
                events.remove_targets(Rule=rule["Name"], EventBusName=bus, Ids=ids)
                events.put_targets(Rule=rule["Name"], EventBusName=bus, Targets=[{"Id": ids[0], "Arn": arn}])
        return url

    def told_events(self) -> list[dict]:
        sqs, got = self.boto.client("sqs"), []
        while batch := sqs.receive_message(QueueUrl=self.told, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            for m in batch:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.told, ReceiptHandle=m["ReceiptHandle"])
        return got

    @staticmethod
    def stackctl_quietly(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        with redirect_stdout(out), redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.1", *args])
        if args[0] == "deploy" and code != 0:
            raise AssertionError(out.getvalue())
        return code, out.getvalue()

    def setUp(self) -> None:
        self.assertEqual(self.runner.exited(), [], "a function died")

    def test_maintenance_is_set_by_alarm_handler_and_refused_with_its_reason(self) -> None:
        code, out = self.stackctl_quietly("maintenance", "--stack", STACK, "--server", SERVER, "--until", "+4h",
                                          "--reason", "firmware")
        self.assertEqual(code, 0, out)
        until = re.search(r"suppressed until (\S+) \(firmware\)", out)
        self.assertIsNotNone(until, out)
        at = datetime.datetime.fromisoformat(until.group(1).replace("Z", "+00:00"))
        self.assertAlmostEqual(at.timestamp(), time.time() + 4 * 3600, delta=120)

        code, out = self.stackctl_quietly("maintenance", "--stack", STACK, "--server", SERVER, "--until", "+60d")
        self.assertEqual(code, 1, out)
        self.assertIn("may last at most 30 days", out)

        code, out = self.stackctl_quietly("maintenance", "--stack", STACK, "--server", SERVER, "--until", "now")
        self.assertEqual(code, 0, out)
        self.assertIn(f"maintenance of {SERVER} ended", out)

    def test_unfence_restores_the_kept_groups_and_removes_the_marks(self) -> None:
        ec2 = self.boto.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.9.1.0/24")["Subnet"]["SubnetId"]
        app = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        web = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc)["GroupId"]
        quarantine = ec2.create_security_group(GroupName="q", Description="q", VpcId=vpc)["GroupId"]
        image = ec2.describe_images()["Images"][0]["ImageId"]
        fenced = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                   SecurityGroupIds=[quarantine])["Instances"][0]["InstanceId"]
        # A workload's original (the operator's role may touch no other instance), as an
        # older version fenced it: one tag for the whole instance.
        marks = {stackctl.TAGS["fenced"]: INCIDENT, stackctl.TAGS["fenced_groups"]: f"{app},{web}"}
        ec2.create_tags(Resources=[fenced], Tags=[{"Key": k, "Value": v}
                                                  for k, v in {**marks, stackctl.TAGS["workload"]: "pos"}.items()])

        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--incident", "inc-*")
        self.assertEqual(code, 1, out)
        self.assertIn("'inc-*' is not an incident id", out)
        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--incident", INCIDENT)
        self.assertEqual(code, 0, out)
        # Kept by a version that isolated the instance as a whole: its primary interface's.
        self.assertRegex(out, rf"{fenced} unfenced: security groups restored \(eni-\w+: {app}, {web}\)")
        instance = ec2.describe_instances(InstanceIds=[fenced])["Reservations"][0]["Instances"][0]
        self.assertEqual(sorted(g["GroupId"] for g in instance["SecurityGroups"]), sorted([app, web]))
        self.assertFalse({t["Key"] for t in instance.get("Tags", [])} & set(marks))
        told = [e for e in self.told_events() if e["detail-type"] == "OriginalUnfenced"]
        self.assertEqual([e["detail"]["instance_id"] for e in told], [fenced], "told once")
        self.assertEqual(told[0]["detail"]["security_groups"], [app, web])
        self.assertFalse(told[0]["detail"]["forced"])

        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--instance", fenced)
        self.assertEqual(code, 1, "nothing fenced is left to unfence")
        self.assertIn(f"no fenced instance found for {fenced}", out)
        code, out = self.stackctl_quietly("unfence", "--stack", STACK)
        self.assertEqual(code, 1, out)

        # Isolated with no groups kept: never guessed, left for a person, and said so.
        bare = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=[quarantine])["Instances"][0]["InstanceId"]
        ec2.create_tags(Resources=[bare], Tags=[{"Key": stackctl.TAGS["fenced"], "Value": OTHER_INCIDENT},
                                                {"Key": stackctl.TAGS["fenced_groups"], "Value": ""}])
        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--incident", OTHER_INCIDENT)
        self.assertEqual(code, 1, out)
        self.assertIn(f"{bare} left isolated: it had no security groups when it was isolated", out)
        instance = ec2.describe_instances(InstanceIds=[bare])["Reservations"][0]["Instances"][0]
        self.assertEqual([g["GroupId"] for g in instance["SecurityGroups"]], [quarantine])
        ec2.terminate_instances(InstanceIds=[fenced, bare])

    def test_a_drill_goes_to_relaunch_and_its_verdicts_are_read(self) -> None:
        code, out = self.stackctl_quietly("drill", "--stack", STACK, "--server", SERVER)
        self.assertEqual(code, 1, out)
        self.assertIn(f"no workloads are declared for {SERVER}", out)
        told = [e for e in self.told_events() if e["detail-type"] == "DrillCompleted"]
        self.assertEqual([e["detail"]["verdicts"] for e in told], [[]])

    def test_redrive_replays_what_failed_to_its_function_once_and_leaves_the_rest(self) -> None:
        sqs = self.boto.client("sqs")
        url = sqs.get_queue_url(QueueName=f"{STACK}-failed-events")["QueueUrl"]
        drill = {"version": "0", "id": "d-1", "detail-type": "DrillRequested", "source": "outposts-ha",
                 "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "eu-west-1", "resources": [],
                 "detail": {"server_id": SERVER, "requested_at": "2026-12-01T10:00:00Z"}}
        # Lambda's on-failure destination record: the event in requestPayload.
        record = {"version": "1.0", "timestamp": "2026-12-01T10:05:00Z",
                  "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3,
                                     "functionArn": f"arn:aws:lambda:eu-west-1:123456789012:function:{STACK}-relaunch:$LATEST"},
                  "requestPayload": drill, "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
                  "responsePayload": {"errorType": "Transient.Throttling", "errorMessage": "slow down"}}
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
        # A rule's dead letter for a function of another stack, and one that is not JSON: left.
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(drill), MessageAttributes={
            "TARGET_ARN": {"DataType": "String", "StringValue": "arn:aws:lambda:eu-west-1:123456789012:function:other-relaunch"}})
        sqs.send_message(QueueUrl=url, MessageBody="{not json")
        # A page the API destination refused: never replayed (it could reopen a resolved alert).
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(drill), MessageAttributes={
            "TARGET_ARN": {"DataType": "String",
                           "StringValue": "arn:aws:events:eu-west-1:123456789012:api-destination/x-pagerduty/1"},
            "ERROR_CODE": {"DataType": "String", "StringValue": "SDK_CLIENT_ERROR"}})
        self.told_events()

        code, out = self.stackctl_quietly("redrive", "--stack", STACK, "--dry-run")
        self.assertEqual(code, 0, out)
        self.assertIn(f"would replay DrillRequested to {STACK}-relaunch", out)
        self.assertIn("would replay 1 event(s); 3 left", out)
        self.assertEqual([e for e in self.told_events() if e["detail-type"] == "DrillCompleted"], [], "a dry run")

        code, out = self.stackctl_quietly("redrive", "--stack", STACK)
        self.assertEqual(code, 0, out)
        self.assertIn("replayed 1 event(s); 3 left", out)
        self.assertIn("other-relaunch is not one of", out)
        self.assertIn("not JSON", out)
        self.assertIn("a page (it failed with SDK_CLIENT_ERROR): replaying it could reopen", out)
        told = [e for e in self.told_events() if e["detail-type"] == "DrillCompleted"]
        self.assertEqual(len(told), 1, "the drill ran again, once")
        code, out = self.stackctl_quietly("redrive", "--stack", STACK)
        self.assertIn("replayed 0 event(s); 3 left", out)
        sqs.purge_queue(QueueUrl=url)

    def test_the_incident_story_is_read_through_the_operator_function(self) -> None:
        self.assertIsNone(stackctl.incident_story(stackctl.Aws(), STACK, SERVER))
        self.assertIsNone(stackctl.incident_story(stackctl.Aws(), STACK, SERVER, OTHER_INCIDENT))
        with self.assertRaisesRegex(stackctl.StackError, "did not answer the status query.*not an Outposts server id"):
            stackctl.incident_story(stackctl.Aws(), STACK, "op-nope")
        with self.assertRaisesRegex(stackctl.StackError, "'inc-9' is not an incident id"):
            stackctl.incident_story(stackctl.Aws(), STACK, SERVER, "inc-9")

    def test_the_fleet_at_a_glance_status_fleet_drill_and_incident(self) -> None:
        server = "op-0aaaaaaaaaaaaaaa1"
        moto_server.seed_outposts([server])
        code, out = self.stackctl_quietly("protect", "--stack", STACK, "--server", server, "--name", "Store 9")
        self.assertEqual(code, 0, out)
        code, out = self.stackctl_quietly("status", "--stack", STACK)
        self.assertEqual(code, 1, "a server with nothing declared and never drilled needs attention")
        lines = [line for line in out.splitlines() if line.startswith(("SERVER", server))]
        self.assertEqual(len(lines), 2, out)
        header, row = lines
        self.assertEqual(header.split(), ["SERVER", "SITE", "ALARM", "WORKLOADS", "BACKUP", "DRILL", "INCIDENT", "ATTENTION"])
        self.assertRegex(row, rf"^{server}  Store 9 +\w+ +0 ok +- +never +- +(alarm \w+; )?no workloads declared; never drilled$")
        self.assertIn("1 protected server(s); 1 need attention", out)
        self.assertIn(f"1 server(s) need attention: {server}", out)

        self.told_events()
        code, out = self.stackctl_quietly("drill", "--stack", STACK)
        self.assertEqual(code, 1, out)
        self.assertRegex(out, rf"{server}  Store 9  0 +NEEDS YOU: no workloads declared")
        self.assertIn("0 of 1 server(s) ready; nothing launched", out)
        digests = [e["detail"] for e in self.told_events() if e["detail-type"] == "FleetDrillCompleted"]
        self.assertEqual([[s["server_id"] for s in d["servers"]] for d in digests], [[server]], "one digest, told once")
        self.assertEqual(digests[0]["servers"][0]["site_name"], "Store 9")
        code, out = self.stackctl_quietly("status", "--stack", STACK)
        row = next(line for line in out.splitlines() if line.startswith(server))
        self.assertRegex(row, r"NOTHING \d+s ago")
        self.assertNotIn("never drilled", row, "the fleet drill is each server's last drill")

        code, out = self.stackctl_quietly("incident", "--stack", STACK, "--server", server)
        self.assertEqual(code, 1, out)
        self.assertIn(f"the ledger holds no incident of {server}", out)
        code, out = self.stackctl_quietly("incident", "--stack", STACK, "--id", OTHER_INCIDENT)
        self.assertEqual(code, 1, out)
        self.assertIn(f"the ledger holds no incident {OTHER_INCIDENT}", out)
        code, out = self.stackctl_quietly("unprotect", "--stack", STACK, "--server", server)
        self.assertEqual(code, 0, out)

    def test_a_command_for_a_stack_that_is_not_there_says_so(self) -> None:
        code, out = self.stackctl_quietly("unfence", "--stack", "nosuchstack", "--incident", "inc-1")
        self.assertEqual(code, 1, out)
        self.assertIn("function nosuchstack-operator does not exist", out)


class NamesComeFromTheContract(unittest.TestCase):
    """The tooling holds no ledger key and no tag name of its own: tags come from
    contract-names.json (exported by the Rust contract), the ledger is read through relaunch."""

    TOOLING = [INFRA / "stackctl.py", INFRA / "demo.py", *sorted((REPO / "tests" / "emulator").glob("*.py"))]
    OWN_NAMES = re.compile(r"""["'](outposts-ha:[a-z-]+|(SERVER|INCIDENT|BACKUP|WORKLOAD|FENCED|SERVING)#|pk|sk|OPEN_INCIDENT|MAINTENANCE|META)["']""")

    def test_no_tooling_file_spells_a_tag_or_a_ledger_key(self) -> None:
        for path in self.TOOLING:
            found = self.OWN_NAMES.findall(path.read_text())
            self.assertEqual(found, [], f"{path.name} spells names the contract owns")

    def test_the_scan_would_see_one(self) -> None:
        self.assertTrue(self.OWN_NAMES.search('tags = {"outposts-ha:fenced": x}'))
        self.assertTrue(self.OWN_NAMES.search('key = {"pk": f"SERVER#{s}"}'))

    def test_the_exported_names_are_the_ones_the_tooling_uses(self) -> None:
        self.assertEqual(stackctl.TAGS["fenced"], "outposts-ha:fenced")
        self.assertEqual(stackctl.STACK_TAG, "outposts-ha:stack")


if __name__ == "__main__":
    unittest.main()
