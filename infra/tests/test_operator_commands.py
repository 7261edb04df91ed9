"""The operator commands end to end: stackctl → the deployed function → AWS, and back.

The stack is deployed into moto by stackctl with the functions' debug binaries (the
build `cargo test` shares); the functions run under the project's local Lambda runner
(tests/emulator/local_lambda.py), which stackctl's `lambda.invoke` reaches through
AWS_ENDPOINT_URL_LAMBDA. Also: the tooling holds no ledger key and no tag name of its own.
"""

from __future__ import annotations

import datetime
import io
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request
import zipfile
from contextlib import redirect_stderr, redirect_stdout

INFRA = pathlib.Path(__file__).resolve().parents[1]
REPO = INFRA.parent
sys.path.insert(0, str(INFRA))
sys.path.insert(0, str(REPO / "tests" / "emulator"))

import local_lambda  # noqa: E402
import stackctl  # noqa: E402

STACK = "ohaops"
SERVER = "op-0123456789abcdef0"
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR") or pathlib.Path.home() / ".cache/outposts-ha/target")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorCommands(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.work = pathlib.Path(tempfile.mkdtemp(prefix="operator-commands-"))
        port = free_port()
        moto = os.environ.get("MOTO_SERVER") or str(pathlib.Path(sys.executable).with_name("moto_server"))
        cls.moto = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=1)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        cls.aws_env = {"AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "eu-west-1", "AWS_REGION": "eu-west-1",
                       "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        cls.saved_env = dict(os.environ)
        os.environ.update(cls.aws_env)
        os.environ.pop("AWS_PROFILE", None)
        os.environ.pop("AWS_ENDPOINT_URL_LAMBDA", None)

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
            env = {**configuration.get("Environment", {}).get("Variables", {}), **cls.aws_env}
            cls.runner.add(configuration["FunctionName"], TARGET / "debug" / function, env)
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = cls.runner.url

    @classmethod
    def tearDownClass(cls) -> None:
        cls.runner.stop()
        cls.moto.kill()
        cls.moto.wait()
        os.environ.clear()
        os.environ.update(cls.saved_env)

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
        marks = {stackctl.TAGS["fenced"]: "inc-9", stackctl.TAGS["fenced_groups"]: f"{app},{web}"}
        ec2.create_tags(Resources=[fenced], Tags=[{"Key": k, "Value": v} for k, v in marks.items()])

        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--incident", "inc-9")
        self.assertEqual(code, 0, out)
        self.assertIn(f"{fenced} unfenced: security groups {app}, {web} restored", out)
        instance = ec2.describe_instances(InstanceIds=[fenced])["Reservations"][0]["Instances"][0]
        self.assertEqual(sorted(g["GroupId"] for g in instance["SecurityGroups"]), sorted([app, web]))
        self.assertFalse({t["Key"] for t in instance.get("Tags", [])} & set(marks))

        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--instance", fenced)
        self.assertEqual(code, 1, "nothing fenced is left to unfence")
        self.assertIn(f"no fenced instance found for {fenced}", out)
        code, out = self.stackctl_quietly("unfence", "--stack", STACK)
        self.assertEqual(code, 1, out)

        # Isolated with no groups kept: never guessed, left for a person, and said so.
        bare = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                 SecurityGroupIds=[quarantine])["Instances"][0]["InstanceId"]
        ec2.create_tags(Resources=[bare], Tags=[{"Key": stackctl.TAGS["fenced"], "Value": "inc-10"},
                                                {"Key": stackctl.TAGS["fenced_groups"], "Value": ""}])
        code, out = self.stackctl_quietly("unfence", "--stack", STACK, "--incident", "inc-10")
        self.assertEqual(code, 1, out)
        self.assertIn(f"{bare} left isolated: it had no security groups when it was isolated", out)
        instance = ec2.describe_instances(InstanceIds=[bare])["Reservations"][0]["Instances"][0]
        self.assertEqual([g["GroupId"] for g in instance["SecurityGroups"]], [quarantine])
        ec2.terminate_instances(InstanceIds=[fenced, bare])

    def test_the_incident_story_is_read_through_relaunch(self) -> None:
        # (The drill publishes its verdicts, and moto's PutEvents fails while a rule targets a
        # function: the drill's invoke path is the same `invoke`, tested in tests/tests/drill.rs.)
        self.assertIsNone(stackctl.incident_story(stackctl.Aws(), STACK, SERVER))
        self.assertIsNone(stackctl.incident_story(stackctl.Aws(), STACK, SERVER, "inc-unknown"))
        with self.assertRaisesRegex(stackctl.StackError, "did not answer the status query.*not an Outposts server id"):
            stackctl.incident_story(stackctl.Aws(), STACK, "op-nope")

    def test_a_command_for_a_stack_that_is_not_there_says_so(self) -> None:
        code, out = self.stackctl_quietly("unfence", "--stack", "nosuchstack", "--incident", "inc-1")
        self.assertEqual(code, 1, out)
        self.assertIn("function nosuchstack-relaunch does not exist", out)


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
