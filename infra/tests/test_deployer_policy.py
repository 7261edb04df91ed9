"""`make deploy`, `protect` and `delete` under infra/deployer-policy.json: stackctl runs with
the access key of a user that has only that policy, and the emulator's IAM double
(tests/emulator/iam_policy_double.py) evaluates every request stackctl makes. What
CloudFormation then creates on the deployer's behalf is not a request here; the policy's
grants for it are checked against the templates' resource types in test_stack.DeployerPolicy.
"""

from __future__ import annotations

import copy
import io
import json
import os
import pathlib
import shutil
import sys
import tempfile
import unittest
import zipfile
from contextlib import redirect_stderr, redirect_stdout

INFRA = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(INFRA))
sys.path.insert(0, str(INFRA / "tests"))

import moto_server  # noqa: E402
import stackctl  # noqa: E402

SERVER = "op-0123456789abcdef0"
POLICY = json.loads((INFRA / "deployer-policy.json").read_text())


class DeployerPolicyEnforced(unittest.TestCase):
    expects_denials = True  # the second test provokes them; the first checks it caused none

    @classmethod
    def setUpClass(cls) -> None:
        cls.work = pathlib.Path(tempfile.mkdtemp(prefix="deployer-policy-"))
        cls.addClassCleanup(shutil.rmtree, cls.work, True)
        moto_server.start(cls)
        cls.artifacts = cls.work / "zips"
        for function in stackctl.FUNCTIONS:
            (cls.artifacts / function).mkdir(parents=True)
            with zipfile.ZipFile(cls.artifacts / function / "bootstrap.zip", "w") as z:
                z.writestr("bootstrap", "#!/bin/sh\n")
        import boto3

        cls.iam = boto3.session.Session(region_name=moto_server.REGION).client("iam")

    @classmethod
    def user_with(cls, name: str, policy: dict) -> dict[str, str]:
        """Credentials of a new user whose only permissions are `policy`."""
        arn = cls.iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
        cls.iam.create_user(UserName=name)
        cls.iam.attach_user_policy(UserName=name, PolicyArn=arn)
        key = cls.iam.create_access_key(UserName=name)["AccessKey"]
        return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}

    @staticmethod
    def stackctl_as(credentials: dict[str, str], *args: str) -> tuple[int, str]:
        saved = {k: os.environ.get(k) for k in credentials}
        os.environ.update(credentials)
        out = io.StringIO()
        try:
            with redirect_stdout(out), redirect_stderr(out):
                code = stackctl.main(["--poll-seconds", "0.1", *args])
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        return code, out.getvalue()

    def refusals(self) -> list[str]:
        return self.iam_denials.read_text().splitlines() if self.iam_denials.exists() else []

    def test_deploy_protect_and_delete_run_under_the_deployer_policy(self) -> None:
        import boto3

        deployer = self.user_with("deployer", POLICY)
        stack = "ohadeploy"
        before = self.refusals()
        code, out = self.stackctl_as(deployer, "deploy", "--stack", stack, "--artifacts", str(self.artifacts),
                                     "--email", "ops@example.com")
        self.assertEqual(code, 0, out)
        moto_server.seed_outposts([SERVER])
        # Without outposts:ListOutposts nothing is protected: an id is never taken unchecked.
        without = copy.deepcopy(POLICY)
        for s in without["Statement"]:
            if s.get("Sid") == "FindOutpostsAndQuarantineGroups":
                s["Action"] = [a for a in s["Action"] if a != "outposts:ListOutposts"]
        code, out = self.stackctl_as(self.user_with("deployer-without-outposts", without), "protect", "--stack", stack,
                                     "--server", SERVER)
        self.assertEqual(code, 1, out)
        self.assertIn("is not authorized to perform: outposts:ListOutposts", out)
        self.assertEqual(self.refusals()[len(before):], [r for r in self.refusals()[len(before):] if "outposts:ListOutposts" in r])
        before = self.refusals()
        code, out = self.stackctl_as(deployer, "protect", "--stack", stack, "--server", SERVER)
        self.assertEqual(code, 0, out)
        # An update that reserves concurrency: the account's settings and each function's
        # reservation are read first.
        code, out = self.stackctl_as(deployer, "deploy", "--stack", stack, "--artifacts", str(self.artifacts),
                                     "--param", "ReservedConcurrency=1")
        self.assertEqual(code, 0, out)
        # Something for --purge-backups to purge: a backup of the stack and its parameter.
        session = boto3.session.Session(region_name=moto_server.REGION)
        ec2, ssm = session.client("ec2"), session.client("ssm")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
        backup = ec2.create_image(InstanceId=instance, Name="backup")["ImageId"]
        mappings = ec2.describe_images(ImageIds=[backup])["Images"][0]["BlockDeviceMappings"]
        snapshots = [m["Ebs"]["SnapshotId"] for m in mappings if "Ebs" in m]
        # As backup-scheduler tags a backup: the AMI and its snapshots.
        ec2.create_tags(Resources=[backup, *snapshots], Tags=[{"Key": stackctl.STACK_TAG, "Value": stack},
                                                             {"Key": stackctl.BACKUP_TAG, "Value": instance}])
        ssm.put_parameter(Name=f"/outposts-ha/{stack}/backups/{instance}", Value=backup, Type="String")
        # The quarantine groups fencing made: one unused (deleted), one still isolating an instance (kept, named).
        vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.8.1.0/24")["Subnet"]["SubnetId"]
        quarantine = {"ResourceType": "security-group", "Tags": [{"Key": stackctl.QUARANTINE_TAG, "Value": stack}]}
        unused = ec2.create_security_group(GroupName="q1", Description="q", VpcId=vpc, TagSpecifications=[quarantine])["GroupId"]
        used = ec2.create_security_group(GroupName="q2", Description="q", VpcId=vpc, TagSpecifications=[quarantine])["GroupId"]
        isolated = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnet,
                                     SecurityGroupIds=[used])["Instances"][0]["InstanceId"]
        code, out = self.stackctl_as(deployer, "delete", "--stack", stack, "--purge-backups", "--yes")
        self.assertEqual(code, 0, out)
        self.assertIn(f"deleted quarantine group {unused}", out)
        self.assertIn(f"kept quarantine group {used}: still used by {isolated}", out)
        self.assertEqual(ec2.describe_images(ImageIds=[backup])["Images"], [], out)
        self.assertIn(f"purged backup {backup} and {len(snapshots)} snapshot(s)", out)
        self.assertGreater(len(snapshots), 0)
        self.assertEqual(ssm.get_parameters_by_path(Path=f"/outposts-ha/{stack}/", Recursive=True)["Parameters"], [])
        self.assertEqual(self.refusals(), before, "the deployer's policy allowed every call")

    def test_a_grant_taken_out_of_the_policy_fails_the_command_that_needs_it(self) -> None:
        policy = copy.deepcopy(POLICY)
        policy["Statement"] = [s for s in policy["Statement"] if s.get("Sid") != "ArtifactsBucket"]
        self.assertEqual(len(policy["Statement"]), len(POLICY["Statement"]) - 1)
        code, out = self.stackctl_as(self.user_with("deployer-without-bucket", policy), "deploy", "--stack",
                                     "ohanobucket", "--artifacts", str(self.artifacts))
        self.assertNotEqual(code, 0, out)
        self.assertIn("AccessDenied", out)
        self.assertIn("arn:aws:s3:::", out)


if __name__ == "__main__":
    unittest.main()
