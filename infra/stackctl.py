#!/usr/bin/env python3
"""Deploy an Outposts HA stack, protect servers with it, and delete all of it.

    stackctl.py deploy    [--config FILE] --artifacts DIR [--email ADDR] [--param KEY=VALUE ...]
    stackctl.py protect   (--server op-… [--name SITE] [--period 60 ...] | --servers stores.csv [--parallel 8])
    stackctl.py unprotect --server op-...
    stackctl.py servers | outputs
    stackctl.py status
    stackctl.py incident  (--id inc-… | --server op-…)
    stackctl.py drill     [--server op-… [--game-day [--yes]]]
    stackctl.py maintenance --server op-… --until (now | +4h | ISO time) [--reason TEXT]
    stackctl.py unfence   (--instance i-… | --incident inc-…)
    stackctl.py failback  --server op-…
    stackctl.py redrive   [--dry-run]
    stackctl.py delete    [--purge-backups] [--yes]

Every command takes --stack NAME (default outposts-ha) and --config FILE, a deployment's
settings (deploy_settings.py), which names the stack and the region.

Credentials come from the usual AWS environment; the region from AWS_REGION, else
AWS_DEFAULT_REGION or the profile, never a default. Every command prints the account,
region and stack first. AWS_ENDPOINT_URL points it at an emulator. Stack events are printed as they happen; a failed step exits non-zero.

Commands that change the ledger or fencing (maintenance, unfence) and reads of an
incident (game day) are requests to the deployed operator function, which owns that state
(a drill goes to relaunch, so it meets relaunch's permissions): this
tool keeps CloudFormation, S3, invoking and printing, and reads no table layout. Tag names
come from contract-names.json, which the Rust contract exports.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import csv
import datetime
import hashlib
import json
import os
import pathlib
import re
import sys
import time
import zoneinfo
import uuid

import boto3
import deploy_settings
from botocore.config import Config
from botocore.exceptions import ClientError
from tqdm import tqdm

INFRA = pathlib.Path(__file__).resolve().parent
MAIN_TEMPLATE = INFRA / "template.yaml"
SERVER_TEMPLATE = INFRA / "protected-server.yaml"
# Tag names as the Rust contract exports them (crates/ha-domain/tests/exported_names.rs).
TAGS: dict[str, str] = json.loads((INFRA / "contract-names.json").read_text())["tags"]
STACK_TAG = TAGS["stack"]
SERVER_TAG = TAGS["protected_server"]
BACKUP_TAG = TAGS["backup_of"]
QUARANTINE_TAG = TAGS["quarantine"]
# Function name -> the template parameter naming its zip in the artifacts bucket.
FUNCTIONS = {
    "alarm-handler": "AlarmHandlerCodeKey",
    "relaunch": "RelaunchCodeKey",
    "notifier": "NotifierCodeKey",
    "backup-scheduler": "BackupSchedulerCodeKey",
    "operator": "OperatorCodeKey",
}
SERVER_ID = re.compile(r"^op-[0-9a-f]{17}$")
STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,39}$")
DONE = re.compile(r"_(COMPLETE|FAILED)$")


class StackError(Exception):
    """A deployment step failed; the message says which and why."""


def say(text: str) -> None:
    print(text, flush=True)


def server_stack_name(stack: str, server: str) -> str:
    return f"{stack}-server-{server}"


def artifacts_bucket_name(stack: str, account: str, region: str) -> str:
    """At most 63 characters, never ending in a hyphen: a long stack name is shortened,
    never the account or the region that keep the name unique."""
    suffix = f"-artifacts-{account}-{region}"
    return stack.lower()[: 63 - len(suffix)].rstrip("-") + suffix


def region_of(environment: dict[str, str], configured: str | None) -> str:
    """AWS_REGION (the SDKs' and Lambda's variable, which boto3 does not read), else boto3's
    own (AWS_DEFAULT_REGION, the profile); never a guess."""
    region = environment.get("AWS_REGION") or configured
    if not region:
        raise StackError("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)")
    return region


def check_stack_name(stack: str) -> str:
    if not STACK_NAME.match(stack):
        raise StackError(f"stack name '{stack}' must start with a letter and have at most 40 letters, digits and hyphens")
    return stack


def check_site_name(name: str) -> str:
    """The site name kept in the server alarm's tag: what messages show beside the server id."""
    name = name.strip()
    if len(name) > 100 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise StackError(f"NAME {name[:40]!r} must be at most 100 characters without control characters")
    return name


def check_server_id(server: str) -> str:
    if not SERVER_ID.match(server):
        raise StackError(f"'{server}' is not an Outposts server id (op- followed by 17 lowercase hex digits)")
    return server


class Aws:
    def __init__(self, region: str | None = None) -> None:
        session = boto3.session.Session()
        self.region = region or region_of(dict(os.environ), session.region_name)
        # Hundreds of server stacks at once meet CloudFormation's request rate: back off and retry.
        self.cfn = session.client("cloudformation", region_name=self.region,
                                  config=Config(retries={"mode": "adaptive", "max_attempts": 10}))
        self.outposts = session.client("outposts", region_name=self.region)
        self.s3 = session.client("s3", region_name=self.region)
        self.ssm = session.client("ssm", region_name=self.region)
        self.ec2 = session.client("ec2", region_name=self.region)
        # A command is sent once: a read timeout shorter than the function's, or a retry,
        # would run it twice.
        self.lam = session.client("lambda", region_name=self.region,
                                  config=Config(read_timeout=900, retries={"total_max_attempts": 1}))
        self.cloudwatch = session.client("cloudwatch", region_name=self.region)
        self.sqs = session.client("sqs", region_name=self.region)
        self.account = session.client("sts", region_name=self.region).get_caller_identity()["Account"]


# --- CloudFormation -------------------------------------------------------------------


def described_stack(aws: Aws, name: str) -> dict | None:
    try:
        stacks = aws.cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as e:
        if "does not exist" in str(e):
            return None
        raise
    return stacks[0] if stacks else None


def stack_status(aws: Aws, name: str) -> str | None:
    stack = described_stack(aws, name)
    return stack["StackStatus"] if stack else None


def unchanged(aws: Aws, stack: dict, template: pathlib.Path, parameters: dict[str, str], tags: dict[str, str]) -> bool:
    """The stack already has these parameters, tags and template: an update would change
    nothing (and, for hundreds of servers, only spend CloudFormation's request rate)."""
    deployed = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}
    if deployed != parameters or {t["Key"]: t["Value"] for t in stack.get("Tags", [])} != tags:
        return False
    body = aws.cfn.get_template(StackName=stack["StackName"])["TemplateBody"]
    return (body if isinstance(body, str) else json.dumps(body)) == template.read_text()


def stream_events(aws: Aws, name: str, since: float, poll: float, echo: bool = True) -> str:
    """Prints the stack's events from `since` on (unless not `echo`) until it settles;
    returns the final status."""
    seen: set[str] = set()
    while True:
        if echo:
            try:
                events = aws.cfn.describe_stack_events(StackName=name)["StackEvents"]
            except ClientError as e:
                if "does not exist" in str(e):
                    return "DELETE_COMPLETE"
                raise
            for e in sorted(events, key=lambda e: e["Timestamp"]):
                if e["EventId"] in seen or e["Timestamp"].timestamp() < since - 1:
                    continue
                seen.add(e["EventId"])
                reason = f"  {e['ResourceStatusReason']}" if e.get("ResourceStatusReason") else ""
                say(f"  {e['Timestamp']:%H:%M:%S}  {e['ResourceStatus']:<22} {e['ResourceType']:<34} {e['LogicalResourceId']}{reason}")
        status = stack_status(aws, name) or "DELETE_COMPLETE"
        if DONE.search(status) and not status.endswith("_IN_PROGRESS"):
            return status
        time.sleep(poll)


def failure_reason(aws: Aws, name: str, since: float) -> str:
    """The first failed resource's reason since `since`, as the stack's events give it."""
    with contextlib.suppress(ClientError):
        events = aws.cfn.describe_stack_events(StackName=name)["StackEvents"]
        for e in sorted(events, key=lambda e: e["Timestamp"]):
            if e["Timestamp"].timestamp() < since - 1:
                continue
            if e["ResourceStatus"].endswith("_FAILED") and e.get("ResourceStatusReason"):
                return f"{e['LogicalResourceId']}: {e['ResourceStatusReason']}"
    return "see the stack's events"


def apply_stack(aws: Aws, name: str, template: pathlib.Path, parameters: dict[str, str], tags: dict[str, str], poll: float,
                keep: tuple[str, ...] = (), echo: bool = True) -> str:
    """Creates or updates the stack; on an update, the parameters named in `keep` keep the
    values the stack has (UsePreviousValue). Returns created, updated or unchanged."""
    described = described_stack(aws, name)
    status = described["StackStatus"] if described else None
    if status in ("CREATE_COMPLETE", "UPDATE_COMPLETE") and not keep and unchanged(aws, described, template, parameters, tags):
        if echo:
            say(f"==> {name}: no changes")
        return "unchanged"
    if status == "ROLLBACK_COMPLETE":
        if echo:
            say(f"==> {name} failed to create earlier; deleting it before creating it again")
        delete_stack(aws, name, poll, echo)
        status = None
    if status and status.endswith("_IN_PROGRESS"):
        raise StackError(f"{name} is busy ({status}); try again when it settles")
    request = dict(
        StackName=name,
        TemplateBody=template.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(parameters.items())]
        + ([{"ParameterKey": k, "UsePreviousValue": True} for k in sorted(keep)] if status else []),
        Capabilities=["CAPABILITY_IAM"],
        Tags=[{"Key": k, "Value": v} for k, v in sorted(tags.items())],
    )
    started = time.time()
    if status is None:
        if echo:
            say(f"==> create {name}")
        aws.cfn.create_stack(**request)
        done = "created"
    else:
        try:
            aws.cfn.update_stack(**request)
        except ClientError as e:
            if "No updates are to be performed" in str(e):
                if echo:
                    say(f"==> {name}: no changes")
                return "unchanged"
            raise
        if echo:
            say(f"==> update {name}")
        done = "updated"
    final = stream_events(aws, name, started, poll, echo)
    if final not in ("CREATE_COMPLETE", "UPDATE_COMPLETE"):
        why = "the events above say why" if echo else failure_reason(aws, name, started)
        raise StackError(f"{name} ended in {final}: {why}")
    return done


def deploy_stack(aws: Aws, name: str, template: pathlib.Path, parameters: dict[str, str], tags: dict[str, str], poll: float,
                 keep: tuple[str, ...] = ()) -> dict[str, str]:
    apply_stack(aws, name, template, parameters, tags, poll, keep)
    return outputs(aws, name)


def delete_stack(aws: Aws, name: str, poll: float, echo: bool = True) -> None:
    if stack_status(aws, name) is None:
        return
    if echo:
        say(f"==> delete {name}")
    started = time.time()
    aws.cfn.delete_stack(StackName=name)
    final = stream_events(aws, name, started, poll, echo)
    if final != "DELETE_COMPLETE":
        raise StackError(f"{name} ended in {final}; the events above say why")


def outputs(aws: Aws, name: str) -> dict[str, str]:
    stack = aws.cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def described_server_stacks(aws: Aws, stack: str) -> list[dict]:
    """The stack's server stacks as DescribeStacks gives them (one listing for the fleet)."""
    prefix = f"{stack}-server-"
    found = []
    for page in aws.cfn.get_paginator("describe_stacks").paginate():
        for s in page["Stacks"]:
            tags = {t["Key"]: t["Value"] for t in s.get("Tags", [])}
            if s["StackName"].startswith(prefix) and tags.get(STACK_TAG) == stack and s["StackStatus"] != "DELETE_COMPLETE":
                found.append(s)
    return sorted(found, key=lambda s: s["StackName"])


def server_stacks(aws: Aws, stack: str) -> list[str]:
    return [s["StackName"] for s in described_server_stacks(aws, stack)]


# --- Artifacts -----------------------------------------------------------------------


def ensure_bucket(aws: Aws, bucket: str, stack: str) -> None:
    try:
        aws.s3.head_bucket(Bucket=bucket)
        return
    except ClientError:
        pass
    say(f"==> creating artifacts bucket {bucket}")
    kwargs = {} if aws.region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": aws.region}}
    aws.s3.create_bucket(Bucket=bucket, **kwargs)
    aws.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws.s3.put_bucket_encryption(
        Bucket=bucket,
        ServerSideEncryptionConfiguration={"Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
    )
    aws.s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": STACK_TAG, "Value": stack}]})


def upload_code(aws: Aws, bucket: str, artifacts: pathlib.Path) -> dict[str, str]:
    """Uploads each function's zip under its content hash; returns the template parameters."""
    keys = {}
    for function, parameter in FUNCTIONS.items():
        path = artifacts / function / "bootstrap.zip"
        if not path.is_file():
            raise StackError(f"{path} is missing: build the functions first (make build)")
        data = path.read_bytes()
        key = f"{function}/{hashlib.sha256(data).hexdigest()}.zip"
        try:
            aws.s3.head_object(Bucket=bucket, Key=key)
        except ClientError:
            aws.s3.put_object(Bucket=bucket, Key=key, Body=data)
            say(f"    uploaded {function} ({len(data) / 1024:.0f} KiB) as {key}")
        keys[parameter] = key
    return keys


def empty_and_delete_bucket(aws: Aws, bucket: str) -> None:
    try:
        aws.s3.head_bucket(Bucket=bucket)
    except ClientError:
        return
    for page in aws.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        items = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        if items:
            aws.s3.delete_objects(Bucket=bucket, Delete={"Objects": items})
    aws.s3.delete_bucket(Bucket=bucket)
    say(f"==> deleted artifacts bucket {bucket}")


# --- What the system creates at run time ---------------------------------------------


def delete_runtime_parameters(aws: Aws, stack: str) -> None:
    names = []
    for page in aws.ssm.get_paginator("get_parameters_by_path").paginate(Path=f"/outposts-ha/{stack}/", Recursive=True):
        names += [p["Name"] for p in page["Parameters"]]
    for i in range(0, len(names), 10):
        aws.ssm.delete_parameters(Names=names[i : i + 10])
    if names:
        say(f"==> deleted {len(names)} backup parameter(s) under /outposts-ha/{stack}/")


def backups(aws: Aws, stack: str) -> list[dict]:
    filters = [{"Name": f"tag:{STACK_TAG}", "Values": [stack]}, {"Name": "tag-key", "Values": [BACKUP_TAG]}]
    return aws.ec2.describe_images(Owners=["self"], Filters=filters)["Images"]


def purge_backups(aws: Aws, stack: str) -> None:
    for image in backups(aws, stack):
        snapshots = [m["Ebs"]["SnapshotId"] for m in image.get("BlockDeviceMappings", []) if "Ebs" in m and "SnapshotId" in m["Ebs"]]
        aws.ec2.deregister_image(ImageId=image["ImageId"])
        for snapshot in snapshots:
            aws.ec2.delete_snapshot(SnapshotId=snapshot)
        say(f"    purged backup {image['ImageId']} and {len(snapshots)} snapshot(s)")


# --- Commands ------------------------------------------------------------------------


def cmd_deploy(aws: Aws, a: argparse.Namespace) -> None:
    stack = check_stack_name(a.stack)
    bucket = artifacts_bucket_name(stack, aws.account, aws.region)
    ensure_bucket(aws, bucket, stack)
    parameters = {"ArtifactsBucket": bucket, **upload_code(aws, bucket, pathlib.Path(a.artifacts))}
    if a.email is not None:
        parameters["NotificationEmail"] = a.email
    for pair in a.param or []:
        key, sep, value = pair.partition("=")
        if not sep:
            raise StackError(f"--param takes KEY=VALUE, got '{pair}'")
        parameters[key] = value
    check_deploy_parameters(aws, stack, parameters)
    # An upgrade keeps every setting it does not name: a parameter left out keeps the value
    # the stack has, not the template's default.
    current = stack_parameters(aws, stack)
    keep = tuple(sorted(k for k in current if k not in parameters and k in template_parameters(MAIN_TEMPLATE)
                        and current[k] != template_default(MAIN_TEMPLATE, k)))
    for key in sorted(k for k in parameters if k in current and k not in CODE_PARAMETERS):
        if current[key] != parameters[key]:
            say(f"==> {key}: {current[key] or '(empty)'} → {parameters[key] or '(empty)'}")
    if keep:
        say(f"==> kept as deployed: {', '.join(keep)}")
    result = deploy_stack(aws, stack, MAIN_TEMPLATE, parameters, {STACK_TAG: stack}, a.poll_seconds, keep)
    print_outputs(result)


# Parameters every deploy sets anew: where the code is.
CODE_PARAMETERS = ("ArtifactsBucket", "AlarmHandlerCodeKey", "RelaunchCodeKey", "NotifierCodeKey",
                   "BackupSchedulerCodeKey", "OperatorCodeKey")


def stack_parameters(aws: Aws, name: str) -> dict[str, str]:
    """The deployed stack's parameters (NoEcho ones as CloudFormation masks them); none
    when it does not exist."""
    if stack_status(aws, name) is None:
        return {}
    stack = aws.cfn.describe_stacks(StackName=name)["Stacks"][0]
    return {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}


def template_parameters(template: pathlib.Path) -> set[str]:
    """The parameters the template declares (a removed one cannot be kept)."""
    names, inside = set(), False
    for line in template.read_text().splitlines():
        if line.rstrip() == "Parameters:":
            inside = True
        elif inside and line and not line[0].isspace():
            break
        elif inside and re.match(r"^  [A-Za-z0-9]+:\s*$", line):
            names.add(line.strip().rstrip(":"))
    return names


def template_default(template: pathlib.Path, parameter: str) -> str | None:
    """A parameter's default as the template declares it."""
    found = re.search(rf"^  {re.escape(parameter)}:\n(?:    .*\n)*?    Default: (.+)$", template.read_text(), re.M)
    return found.group(1).strip().strip('"') if found else None


# Lambda keeps this much of the account's concurrency unreserved.
UNRESERVED_MINIMUM = 100


def check_deploy_parameters(aws: Aws, stack: str, parameters: dict[str, str]) -> None:
    """Refuses, before CloudFormation starts, what would fail halfway through or after."""
    zone = parameters.get("TimeZone")
    if zone and zone != "UTC":
        try:
            zoneinfo.ZoneInfo(zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise StackError(f"TimeZone {zone!r} is not an IANA time zone (for example Europe/Berlin, or UTC)") from None
    exists = stack_status(aws, stack) is not None
    if exists:
        current = outputs(aws, stack).get("AlarmNamePrefix")
        # A parameter left out takes the template's default again.
        wanted = parameters.get("AlarmNamePrefix", template_default(MAIN_TEMPLATE, "AlarmNamePrefix"))
        imported_by = server_stacks(aws, stack) if current is not None and wanted != current else []
        if imported_by:
            raise StackError(f"AlarmNamePrefix is {current} and {len(imported_by)} server stack(s) import it "
                             f"({', '.join(imported_by[:3])}{', …' if len(imported_by) > 3 else ''}): "
                             "keep it, or unprotect those servers first and protect them again after")
    reserved = int(parameters.get("ReservedConcurrency", "0") or 0)
    if reserved > 0:
        limits = aws.lam.get_account_settings()["AccountLimit"]
        unreserved = limits.get("UnreservedConcurrentExecutions", limits.get("ConcurrentExecutions", 0))
        # What this stack's functions reserve now is given back by the update.
        for function in FUNCTIONS if exists else []:
            with contextlib.suppress(ClientError):
                now = aws.lam.get_function_concurrency(FunctionName=f"{stack}-{function}")
                unreserved += now.get("ReservedConcurrentExecutions", 0)
        wanted = reserved * len(FUNCTIONS)
        if unreserved - wanted < UNRESERVED_MINIMUM:
            raise StackError(f"ReservedConcurrency={reserved} reserves {wanted} for {len(FUNCTIONS)} functions, but the "
                             f"account has {unreserved} unreserved and Lambda keeps {UNRESERVED_MINIMUM}: "
                             "lower it, or 0 to reserve none, or raise the account's concurrency quota")


class ServerRow:
    """One server to protect: from the command line or a line of the servers file."""

    def __init__(self, server: str, name: str = "", period: int = 60, evaluation_periods: int = 5, datapoints: int = 3,
                 line: int | None = None) -> None:
        self.server, self.name, self.line = server, name, line
        self.period, self.evaluation_periods, self.datapoints = period, evaluation_periods, datapoints

    def check(self) -> None:
        check_server_id(self.server)
        check_site_name(self.name)
        if self.period not in (60, 300):
            # ConnectedStatus is published once a minute: a shorter period sees missing data,
            # which counts as breaching, and fails over healthy servers.
            raise StackError(f"period {self.period} must be 60 or 300 seconds")
        if not 1 <= self.evaluation_periods <= 60 or not 1 <= self.datapoints <= 60:
            raise StackError("evaluation_periods and datapoints must be 1 to 60")
        if self.datapoints > self.evaluation_periods:
            raise StackError(f"datapoints {self.datapoints} cannot exceed evaluation_periods {self.evaluation_periods}")

    def parameters(self, stack: str) -> dict[str, str]:
        return {"MainStackName": stack, "OutpostId": self.server, "PeriodSeconds": str(self.period),
                "EvaluationPeriods": str(self.evaluation_periods), "DatapointsToAlarm": str(self.datapoints),
                "SiteName": self.name.strip()}


SERVER_COLUMNS = ("server_id", "site_name", "period", "evaluation_periods", "datapoints")


def read_servers_file(path: str) -> tuple[list[ServerRow], list[tuple[str, str]]]:
    """The file's rows, and (line, why) for each row that cannot be protected as written.
    A header names the columns: server_id first, the others optional (docs/stores.example.csv)."""
    try:
        text = pathlib.Path(path).read_text(encoding="utf-8-sig")
    except OSError as e:
        raise StackError(f"cannot read {path}: {e.strerror}") from None
    # Blank lines are skipped by the reader; comment lines below: line numbers stay the file's.
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in reader.fieldnames or []]
    if not header or header[0] != "server_id" or any(h not in SERVER_COLUMNS for h in header):
        raise StackError(f"{path}: the first line must name the columns, server_id first, from {', '.join(SERVER_COLUMNS)} "
                         f"(found {', '.join(header) or 'nothing'})")
    rows, bad, seen = [], [], {}
    for record in reader:
        line = f"{path}:{reader.line_num}"
        values = {k.strip(): (v or "").strip() for k, v in record.items() if k is not None}
        if values.get("server_id", "").startswith("#"):
            continue
        if None in record:
            bad.append((line, f"more columns than the header names: {record[None]}"))
            continue
        try:
            numbers = {k: int(values[k]) for k in ("period", "evaluation_periods", "datapoints") if values.get(k)}
        except ValueError:
            bad.append((line, "period, evaluation_periods and datapoints must be whole numbers"))
            continue
        row = ServerRow(values.get("server_id", ""), values.get("site_name", ""), line=reader.line_num, **numbers)
        try:
            row.check()
        except StackError as e:
            bad.append((line, str(e)))
            continue
        if row.server in seen:
            bad.append((line, f"{row.server} is already on line {seen[row.server]}"))
            continue
        seen[row.server] = reader.line_num
        rows.append(row)
    return rows, bad


def account_outposts(aws: Aws) -> dict[str, str]:
    """The account's Outposts in the region, id → lifecycle status (ListOutposts)."""
    found = {}
    for page in aws.outposts.get_paginator("list_outposts").paginate():
        found.update({o["OutpostId"]: o.get("LifeCycleStatus", "") for o in page.get("Outposts", [])})
    return found


def unknown_outpost(server: str, outposts: dict[str, str], aws: Aws) -> str | None:
    """Why the server cannot be protected, or None: an alarm on an id with no data is
    breaching from its first evaluation, a critical failover of nothing."""
    if server not in outposts:
        return f"{server} is not an Outpost of account {aws.account} in {aws.region} (ListOutposts)"
    if outposts[server] not in ("ACTIVE", ""):
        return f"{server} is {outposts[server]}, not ACTIVE"
    return None


def cmd_protect(aws: Aws, a: argparse.Namespace) -> None:
    stack = check_stack_name(a.stack)
    if bool(a.server) == bool(a.servers):
        raise StackError("name one server (--server op-…) or a file of them (--servers stores.csv)")
    if stack_status(aws, stack) is None:
        raise StackError(f"stack {stack} does not exist: deploy it first (make deploy)")
    if a.servers:
        return protect_many(aws, stack, a)
    row = ServerRow(a.server, a.name or "", a.period, a.evaluation_periods, a.datapoints)
    row.check()
    why = unknown_outpost(row.server, account_outposts(aws), aws)
    if why:
        raise StackError(f"not protected: {why}")
    tags = {STACK_TAG: stack, SERVER_TAG: row.server}
    deploy_stack(aws, server_stack_name(stack, row.server), SERVER_TEMPLATE, row.parameters(stack), tags, a.poll_seconds)
    site = f" ({row.name})" if row.name else ""
    say(f"==> {row.server}{site} is protected by alarm {outputs(aws, stack).get('AlarmNamePrefix', '')}{row.server}")


def protect_many(aws: Aws, stack: str, a: argparse.Namespace) -> None:
    """Every server of the file, `--parallel` stacks at once; a row that cannot be protected
    is reported and the rest go on. Rerunning it changes only what changed."""
    started = time.time()
    calls = {"n": 0}

    def count(**_: object) -> None:
        calls["n"] += 1

    aws.cfn.meta.events.register("before-call.cloudformation", count)
    rows, refused_rows = read_servers_file(a.servers)
    outposts = account_outposts(aws)
    for row in list(rows):
        why = unknown_outpost(row.server, outposts, aws)
        if why:
            refused_rows.append((f"{a.servers}:{row.line}", why))
            rows.remove(row)
    done: dict[str, list[str]] = {"created": [], "updated": [], "unchanged": []}
    failed: list[tuple[str, str]] = []

    def protect(row: ServerRow) -> str:
        tags = {STACK_TAG: stack, SERVER_TAG: row.server}
        return apply_stack(aws, server_stack_name(stack, row.server), SERVER_TEMPLATE, row.parameters(stack), tags,
                           a.poll_seconds, echo=False)

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=a.parallel)
    try:
        with tqdm(total=len(rows), unit="server", desc="protecting", file=sys.stderr, disable=None) as progress:
            futures = {pool.submit(protect, row): row for row in rows}
            for future in concurrent.futures.as_completed(futures):
                row = futures[future]
                try:
                    done[future.result()].append(row.server)
                except Exception as e:  # noqa: BLE001 - one server's failure (any kind) is reported, not fatal
                    failed.append((row.server, f"{type(e).__name__}: {e}" if not isinstance(e, StackError) else str(e)))
                progress.update()
    except KeyboardInterrupt:
        pool.shutdown(wait=True, cancel_futures=True)
        raise StackError("interrupted: the servers not started yet were left; run the same file again") from None
    pool.shutdown(wait=True)
    for line, why in sorted(refused_rows):
        say(f"==> not protected ({line}): {why}")
    for server, why in sorted(failed):
        say(f"==> {server} failed: {why}")
    protected = sum(len(v) for v in done.values())
    say(f"==> {protected} server(s) protected ({len(done['created'])} new, {len(done['updated'])} changed, "
        f"{len(done['unchanged'])} unchanged); {len(refused_rows)} refused, {len(failed)} failed; "
        f"{calls['n']} CloudFormation calls in {time.time() - started:.1f} s")
    if refused_rows or failed:
        raise StackError(f"{len(refused_rows) + len(failed)} server(s) of {a.servers} are not protected; see above")


def cmd_unprotect(aws: Aws, a: argparse.Namespace) -> None:
    name = server_stack_name(check_stack_name(a.stack), check_server_id(a.server))
    if stack_status(aws, name) is None:
        raise StackError(f"{a.server} is not protected by {a.stack}")
    delete_stack(aws, name, a.poll_seconds)
    say(f"==> {a.server} is no longer protected")


def cmd_servers(aws: Aws, a: argparse.Namespace) -> None:
    prefix = f"{check_stack_name(a.stack)}-server-"
    for name in server_stacks(aws, a.stack):
        say(name[len(prefix) :])


def cmd_outputs(aws: Aws, a: argparse.Namespace) -> None:
    print_outputs(outputs(aws, check_stack_name(a.stack)))


def confirm(stack: str, yes: bool, what: str, answer=input, refused: str = "not done") -> None:
    """A destructive command goes on when the stack's name is typed, or --yes is given
    (YES=1); without a terminal to type into, it does nothing."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise StackError(f"{refused}: confirm with --yes (YES=1) to {what}")
    typed = answer(f"This will {what}. Type the stack's name ({stack}) to go on: ")
    if typed.strip() != stack:
        raise StackError(f"{refused}: {typed.strip()!r} is not {stack}")


def confirm_delete(stack: str, yes: bool, answer=input) -> None:
    """Deleting a stack ends its failover for every server it protects."""
    confirm(stack, yes, f"delete {stack} and stop protecting its servers", answer, refused="not deleted")


def delete_quarantine_groups(aws: Aws, stack: str) -> None:
    """The quarantine groups fencing made (one per VPC); one an instance still uses stays, named."""
    filters = [{"Name": f"tag:{QUARANTINE_TAG}", "Values": [stack]}]
    for group in aws.ec2.describe_security_groups(Filters=filters)["SecurityGroups"]:
        try:
            aws.ec2.delete_security_group(GroupId=group["GroupId"])
            say(f"==> deleted quarantine group {group['GroupId']} ({group.get('VpcId', '-')})")
        except ClientError as e:
            if e.response["Error"]["Code"] != "DependencyViolation":
                raise
            users = aws.ec2.describe_network_interfaces(
                Filters=[{"Name": "group-id", "Values": [group["GroupId"]]}])["NetworkInterfaces"]
            holders = sorted({i.get("Attachment", {}).get("InstanceId") or i["NetworkInterfaceId"] for i in users})
            say(f"==> kept quarantine group {group['GroupId']}: still used by {', '.join(holders) or 'something'} "
                "(unfence or terminate it, then delete the group)")


def cmd_delete(aws: Aws, a: argparse.Namespace) -> None:
    stack = check_stack_name(a.stack)
    if stack_status(aws, stack) is None:
        raise StackError(f"stack {stack} does not exist")
    confirm_delete(stack, a.yes)
    for name in server_stacks(aws, stack):
        delete_stack(aws, name, a.poll_seconds)
    delete_stack(aws, stack, a.poll_seconds)
    delete_runtime_parameters(aws, stack)
    delete_quarantine_groups(aws, stack)
    empty_and_delete_bucket(aws, artifacts_bucket_name(stack, aws.account, aws.region))
    kept = backups(aws, stack)
    if a.purge_backups:
        purge_backups(aws, stack)
    elif kept:
        say(f"==> kept {len(kept)} backup AMI(s) and their snapshots; delete with --purge-backups (make delete PURGE_BACKUPS=1)")
    say(f"==> {stack} deleted")


def parse_until(text: str, now: datetime.datetime) -> datetime.datetime:
    """`now`, `+4h` / `+30m` / `+2d`, or an ISO 8601 time with a zone."""
    if text == "now":
        return now
    units = {"m": 60, "h": 3600, "d": 86400}
    if text.startswith("+") and text[-1:] in units and text[1:-1].isdigit():
        return now + datetime.timedelta(seconds=int(text[1:-1]) * units[text[-1]])
    try:
        until = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise StackError(f"UNTIL '{text}' is not now, +<n>m|h|d or an ISO 8601 time like 2026-11-23T06:00Z") from None
    if until.tzinfo is None:
        raise StackError(f"UNTIL '{text}' has no time zone; add Z or an offset")
    return until


def now_text(now: datetime.datetime | None = None) -> str:
    return (now or datetime.datetime.now(datetime.timezone.utc)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def invoke(aws: Aws, stack: str, function: str, detail_type: str, detail: dict) -> dict:
    """Sends one command to a deployed function and returns its answer (the caller judges a
    refusal); a function that failed, or is not there, is a StackError saying why."""
    event = {"version": "0", "id": f"{detail_type}-{uuid.uuid4()}", "detail-type": detail_type, "source": "outposts-ha",
             "time": now_text(), "region": aws.region, "account": aws.account, "resources": [], "detail": detail}
    name = f"{stack}-{function}"
    try:
        out = aws.lam.invoke(FunctionName=name, Payload=json.dumps(event).encode())
    except aws.lam.exceptions.ResourceNotFoundException:
        raise StackError(f"function {name} does not exist: deploy the stack first (make deploy)") from None
    body = json.loads(out["Payload"].read() or b"null")
    if out.get("FunctionError"):
        raise StackError(f"{name} failed: {body.get('errorType')}: {body.get('errorMessage')}")
    return body


def cmd_maintenance(aws: Aws, a: argparse.Namespace) -> None:
    stack, server = check_stack_name(a.stack), check_server_id(a.server)
    now = datetime.datetime.now(datetime.timezone.utc)
    until = parse_until(a.until, now).astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    detail = {"server_id": server, "until": until, "reason": a.reason, "requested_at": now_text(now)}
    answer = invoke(aws, stack, "operator", "MaintenanceRequested", detail)
    if answer.get("command") != "maintenance":
        raise StackError(f"maintenance of {server} refused: {answer.get('reason', answer)}")
    if answer["ended"]:
        say(f"==> maintenance of {server} ended: its next alarm relaunches")
    else:
        say(f"==> relaunch of {server} suppressed until {answer['until']} ({answer['reason']}); it lapses by itself")


def drill_table(verdicts: list[dict]) -> str:
    """The drill's verdicts as a table an operator reads."""
    rows = [("workload", "verdict", "destination", "backup", "problems")]
    for v in verdicts:
        backup = (v.get("restored_from") or {}).get("image_id") or "-"
        notes = v.get("problems", []) + ([f"witness: {v['witness']}"] if v.get("witness") and v["ready"] else [])
        rows.append((v["workload"], "READY" if v["ready"] else "NOT READY", v.get("destination") or "-", backup,
                     "; ".join(notes) or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r[:4], widths)) + "  " + r[4] for r in rows)


def cmd_drill(aws: Aws, a: argparse.Namespace) -> None:
    stack = check_stack_name(a.stack)
    if not a.server:
        if a.game_day:
            raise StackError("a game day fails over one server: name it (--server op-…)")
        return fleet_drill(aws, stack)
    server = check_server_id(a.server)
    if a.game_day:
        return game_day(aws, stack, server, a)
    say(f"==> drill of {server}: every workload through a dry-run relaunch, as {stack}-relaunch (nothing launches)")
    body = invoke(aws, stack, "relaunch", "DrillRequested", {"server_id": server, "requested_at": now_text()})
    verdicts = body.get("verdicts", []) if body.get("job") == "drill" else []
    if not verdicts:
        raise StackError(f"no workloads are declared for {server} (or the function ignored the request: {body})")
    say(drill_table(verdicts))
    not_ready = [v["workload"] for v in verdicts if not v["ready"]]
    if not_ready:
        raise StackError(f"{len(not_ready)} workload(s) would not relaunch: {', '.join(not_ready)}")


def server_needs(s: dict) -> str | None:
    """Why a server of the fleet drill needs a person (as the digest says it), or None."""
    if s.get("problem"):
        return s["problem"]
    if s["not_ready"]:
        return f"{len(s['not_ready'])} workload(s) would not relaunch"
    return None if s["ready"] else "no workloads declared"


def fleet_drill(aws: Aws, stack: str) -> None:
    """Every protected server through a dry-run relaunch, as the weekly schedule runs it:
    one request to relaunch, one digest told."""
    say(f"==> fleet drill: every workload of every protected server through a dry-run relaunch, as {stack}-relaunch")
    body = invoke(aws, stack, "relaunch", "FleetDrillRequested", {"requested_at": now_text()})
    if body.get("job") != "fleet_drill":
        raise StackError(f"{stack}-relaunch did not drill the fleet: {body.get('reason', body)}")
    servers = body["servers"]
    rows = [("server", "site", "ready", "verdict")]
    for s in servers:
        needs = server_needs(s)
        rows.append((s["server_id"], s.get("site_name") or "-", str(s["ready"]), f"NEEDS YOU: {needs}" if needs else "READY"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    say("\n".join("  ".join(c.ljust(w) for c, w in zip(r[:3], widths)) + "  " + r[3] for r in rows))
    for s in servers:
        for v in s["not_ready"]:
            say(f"    {s['server_id']} {v['workload']}: {'; '.join(v['problems'])}")
    attention = [s["server_id"] for s in servers if server_needs(s)]
    say(f"==> {len(servers) - len(attention)} of {len(servers)} server(s) ready; nothing launched")
    if not servers:
        raise StackError(f"{stack} protects no servers (make protect)")
    if attention:
        raise StackError(f"{len(attention)} server(s) need you: {', '.join(attention[:10])}{', …' if len(attention) > 10 else ''}")


def game_day(aws: Aws, stack: str, server: str, a: argparse.Namespace) -> None:
    """A real failover: the server's alarm is set to ALARM; replacements launch, and the
    originals are fenced per policy when the alarm returns to OK."""
    alarm = outputs(aws, stack).get("AlarmNamePrefix", "outposts-ha-") + server
    say(f"GAME DAY: alarm {alarm} goes to ALARM now. Replacements WILL launch, and when the alarm")
    say("returns to OK the originals WILL be fenced per the stack's policy.")
    confirm(stack, a.yes, f"fail over {server} for real (game day)")
    started = time.time()
    aws.cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="Outposts HA game day")
    say(f"==> {alarm} set to ALARM; waiting for the relaunch (at most {a.timeout} s)")
    settled = None
    while time.time() - started < a.timeout:
        story = incident_story(aws, stack, server)
        workloads = (story or {}).get("workloads", [])
        if workloads and all(w["status"] != "launching" for w in workloads):
            settled = story
            if all(w.get("serving_at") for w in workloads if w["status"] == "launched"):
                break
        time.sleep(2)
    if settled is None:
        raise StackError(f"no settled relaunch within {a.timeout} s; check the functions' logs")
    say(incident_table(settled))


def incident_story(aws: Aws, stack: str, server: str, incident: str | None = None, latest: bool = False) -> dict | None:
    """The ledger's story of the server's open incident (or the named one; or with `latest`
    its newest), as the operator function tells it."""
    detail = {"server_id": server, "incident_id": incident, "latest": latest, "requested_at": now_text()}
    body = invoke(aws, stack, "operator", "IncidentStatusRequested", detail)
    if body.get("command") != "status":
        raise StackError(f"{stack}-operator did not answer the status query: {body.get('reason', body)}")
    return body.get("incident")


def incident_table(story: dict) -> str:
    """An incident's workloads with their times since detection, as an operator reads them."""
    detected = datetime.datetime.fromisoformat(story["detected_at"].replace("Z", "+00:00"))

    def since_detection(at: str | None) -> str:
        return f"{(datetime.datetime.fromisoformat(at.replace('Z', '+00:00')) - detected).total_seconds():.1f} s" if at else "-"

    lines = [f"==> incident {story['incident_id']} ({story['status']}), detected {story['detected_at']}",
             f"    {'workload':<32} {'status':<9} {'detection→launch':>17} {'detection→serving':>18}"]
    for w in sorted(story["workloads"], key=lambda w: w["workload"]):
        lines.append(f"    {w['workload']:<32} {w['status']:<9} {since_detection(w.get('launch_accepted_at')):>17} "
                     f"{since_detection(w.get('serving_at')):>18}")
    return "\n".join(lines)


# Each fact the ledger says was told, as an operator reads it.
TOLD = {"opened": "opening told", "failover_reported": "failover summary told", "recovered": "server back (told)",
        "closed": "closing told", "witnessed": "witness verdict told", "suppressed": "suppressed relaunch told",
        "realarmed": "down again (told)", "fenced": "original {} fenced (told)", "serving": "{} serving (told)",
        "replacement_lost": "{}'s replacement lost (told)"}


def told_text(fact: dict) -> str:
    return TOLD.get(fact["kind"], fact["kind"].replace("_", " ") + " told").format(fact.get("subject") or "")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def incident_timeline(story: dict) -> str:
    """An incident's story from the ledger as a timeline: detection, each workload's launch
    and serving, each fact told (the originals fenced among them), with times since detection."""
    detected = parse_time(story["detected_at"])
    site = f"{story['site_name']} ({story['server_id']})" if story.get("site_name") else story["server_id"]
    events = [(detected, "detected: the server's alarm went to ALARM")]
    for w in story["workloads"]:
        where = f" in {w['subnet_id']}" if w.get("subnet_id") else ""
        if w.get("launch_accepted_at"):
            events.append((parse_time(w["launch_accepted_at"]), f"{w['workload']}: {w.get('replacement_instance_id')} launched{where}"))
        elif w["status"] == "failed":
            events.append((detected, f"{w['workload']}: not relaunched (failed)"))
        if w.get("serving_at"):
            events.append((parse_time(w["serving_at"]), f"{w['workload']}: serving"))
    if story.get("recovered_at"):
        events.append((parse_time(story["recovered_at"]), "server back: its alarm went to OK"))
    # The ledger keeps when a fact was told to the second: within its second, after the rest.
    told = [(parse_time(f["at"]) + datetime.timedelta(seconds=0.999), told_text(f)) for f in story.get("told", [])]
    lines = [f"==> incident {story['incident_id']} ({story['status']}): {site}"]
    for at, what in sorted(events + told, key=lambda e: e[0]):
        lines.append(f"    {at:%Y-%m-%d %H:%M:%S}Z  +{max(0.0, (at - detected).total_seconds()):>7.1f} s  {what}")
    still = [w["workload"] for w in story["workloads"] if w["status"] == "launching"]
    if still:
        lines.append(f"    launching still: {', '.join(still)}")
    if story.get("summary"):
        lines.append(f"    summary: {story['summary']}")
    return "\n".join(lines)


def cmd_incident(aws: Aws, a: argparse.Namespace) -> None:
    """An incident's timeline from the ledger: the named one, or the server's open (else newest)."""
    stack = check_stack_name(a.stack)
    if bool(a.id) == bool(a.server):
        raise StackError("name an incident (--id inc-…) or a server (--server op-…)")
    server = check_server_id(a.server) if a.server else ""
    story = incident_story(aws, stack, server, a.id, latest=True)
    if story is None:
        raise StackError(f"the ledger holds no incident {a.id or f'of {server}'} (incidents expire after IncidentRetentionDays)")
    say(incident_timeline(story))


def human_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


# A fleet drill runs weekly: a drill older than this (or none) needs a person.
DRILL_MAX_AGE_SECONDS = 8 * 86400
STATUS_BATCH = 50


def status_rows(servers: list[dict], alarms: dict[str, str], statuses: dict[str, dict], rpo_seconds: int,
                now: datetime.datetime, drills_scheduled: bool = False) -> list[dict]:
    """One row per protected server, with what needs a person. An old drill needs one only
    when the stack schedules fleet drills (FleetDrillSchedule)."""
    rows = []
    for s in servers:
        server = s["server"]
        st = statuses.get(server) or {"problem": "the operator function did not answer for it"}
        needs = []
        alarm = alarms.get(server, "MISSING")
        if alarm != "OK":
            needs.append(f"alarm {alarm}")
        if st.get("problem"):
            needs.append(st["problem"])
        workloads = st.get("workloads", 0)
        unusable = st.get("unusable", [])
        if unusable:
            needs.append(f"{len(unusable)} unusable: {'; '.join(unusable)}")
        if not workloads and not unusable and not st.get("problem"):
            needs.append("no workloads declared")
        age = st.get("oldest_backup_age_seconds")
        if st.get("missing_backups"):
            needs.append("; ".join(st["missing_backups"]))
        if age is not None and age > rpo_seconds:
            needs.append(f"backup {human_age(age)} old (RPO {human_age(rpo_seconds)})")
        drill = st.get("last_drill")
        if drill is None:
            drill_text = "never"
            needs.append("never drilled")
        else:
            drill_age = (now - parse_time(drill["drilled_at"])).total_seconds()
            verdict = (f"{len(drill['not_ready'])} NOT READY" if drill["not_ready"]
                       else "READY" if drill["ready"] else "NOTHING")
            drill_text = f"{verdict} {human_age(drill_age)} ago"
            if drill["not_ready"]:
                needs.append(f"drill: {'; '.join(drill['not_ready'])}")
            if drills_scheduled and drill_age > DRILL_MAX_AGE_SECONDS:
                needs.append(f"last drill {human_age(drill_age)} ago")
        if st.get("open_incident"):
            needs.append(f"incident {st['open_incident']} open (make incident SERVER={server})")
        elif st.get("away"):
            needs.append(f"{len(st['away'])} on a replacement ({'; '.join(st['away'])}): make failback SERVER={server}, "
                         "stateful ones by the runbook")
        rows.append({
            "server": server, "site": s.get("site") or "-", "alarm": alarm,
            "workloads": f"{workloads} ok" + (f", {len(unusable)} unusable" if unusable else ""),
            "backup": "-" if not st.get("stateful") else ("missing" if age is None else human_age(age)),
            "drill": drill_text, "incident": st.get("open_incident") or "-", "attention": "; ".join(needs),
        })
    return rows


def cmd_status(aws: Aws, a: argparse.Namespace) -> None:
    """One row per protected server; exits non-zero when any needs attention."""
    stack = check_stack_name(a.stack)
    if stack_status(aws, stack) is None:
        raise StackError(f"stack {stack} does not exist: deploy it first (make deploy)")
    servers = []
    for s in described_server_stacks(aws, stack):
        parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in s.get("Parameters", [])}
        servers.append({"server": parameters.get("OutpostId") or s["StackName"].rsplit("-server-", 1)[-1],
                        "site": parameters.get("SiteName", "")})
    prefix = outputs(aws, stack).get("AlarmNamePrefix", "outposts-ha-")
    alarms = {}
    for page in aws.cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix, AlarmTypes=["MetricAlarm"]):
        alarms.update({m["AlarmName"][len(prefix):]: m["StateValue"] for m in page["MetricAlarms"]})
    statuses = {}
    ids = [s["server"] for s in servers]
    for i in range(0, len(ids), STATUS_BATCH):
        body = invoke(aws, stack, "operator", "FleetStatusRequested",
                      {"server_ids": ids[i : i + STATUS_BATCH], "requested_at": now_text()})
        if body.get("command") != "fleet_status":
            raise StackError(f"{stack}-operator did not answer the status query: {body.get('reason', body)}")
        statuses.update({st["server_id"]: st for st in body["servers"]})
    deployed = stack_parameters(aws, stack)
    rpo = int(deployed.get("BackupRpoSeconds") or 86400)
    rows = status_rows(servers, alarms, statuses, rpo, datetime.datetime.now(datetime.timezone.utc),
                       drills_scheduled=bool(deployed.get("FleetDrillSchedule")))
    columns = ("server", "site", "alarm", "workloads", "backup", "drill", "incident", "attention")
    table = [{c: c.upper() for c in columns}] + rows
    widths = {c: max(len(r[c]) for r in table) for c in columns[:-1]}
    for r in table:
        say("  ".join(r[c].ljust(widths[c]) for c in columns[:-1]) + "  " + (r["attention"] or ("-" if r is not table[0] else "ATTENTION")))
    attention = [r["server"] for r in rows if r["attention"]]
    print(f"==> {len(rows)} protected server(s); {len(attention)} need attention", file=sys.stderr)
    if attention:
        raise StackError(f"{len(attention)} server(s) need attention: {', '.join(attention[:10])}{', …' if len(attention) > 10 else ''}")


def cmd_failback(aws: Aws, a: argparse.Namespace) -> None:
    """Moves the server's stateless workloads home: each pass of the operator function puts
    originals back and, once they are healthy behind their target groups, takes the
    replacements out and terminates them. Passes repeat until nothing waits."""
    stack, server = check_stack_name(a.stack), check_server_id(a.server)
    confirm(stack, a.yes, f"move {server}'s stateless workloads home and terminate their replacements")
    started = time.time()
    while True:
        body = invoke(aws, stack, "operator", "FailbackRequested", {"server_id": server, "requested_at": now_text()})
        if body.get("command") != "failback":
            raise StackError(f"fail-back of {server} refused: {body.get('reason', body)}")
        for h in body["waiting"]:
            say(f"==> {h['workload']}: waiting for {h['waiting_for']}")
        if not body["waiting"] or time.time() - started > a.timeout:
            break
        time.sleep(a.poll_seconds)
    say(f"==> {server}: replacements of incident(s) {', '.join(body['incidents']) or '(none running)'}:")
    for h in body["moved_home"]:
        say(f"    {h['workload']}: home on {h['original_instance_id']}; replacement {h['replacement_instance_id']} terminated")
    for left in body["left"]:
        say(f"    {left['workload']}: left on its replacement: {left['reason']}")
    if body["waiting"]:
        raise StackError(f"{len(body['waiting'])} workload(s) still waiting after {a.timeout} s: run make failback again")
    if body["left"]:
        raise StackError(f"{len(body['left'])} workload(s) left on their replacements; see above and docs/runbook.md")


def cmd_unfence(aws: Aws, a: argparse.Namespace) -> None:
    """Puts fenced originals back: the operator function restores each network interface's
    security groups from the tag fencing kept them in and removes the fencing marks; an original whose
    incident is open or whose replacement still runs stays fenced unless --force."""
    if bool(a.instance) == bool(a.incident):
        raise StackError("name exactly one of --instance i-… or --incident inc-…")
    detail = {"instance_id": a.instance, "incident_id": a.incident, "force": a.force, "requested_at": now_text()}
    body = invoke(aws, check_stack_name(a.stack), "operator", "UnfenceRequested", detail)
    if body.get("command") != "unfence":
        raise StackError(body.get("reason") or f"unexpected answer: {body}")
    for r in body["restored"]:
        interfaces = r.get("interface_groups") or []
        groups = "; ".join(f"{i['interface_id']}: {', '.join(i['groups'])}" for i in interfaces)
        restored = f"security groups restored ({groups})" if groups else "it was not isolated"
        say(f"==> {r['instance_id']} unfenced: {restored}")
    for r in body["left_isolated"]:
        say(f"==> {r['instance_id']} left isolated: {r['reason']}")
    if body["left_isolated"]:
        raise StackError(f"{len(body['left_isolated'])} original(s) could not be put back; see above")


def cmd_release(aws: Aws, a: argparse.Namespace) -> None:
    """Relaunches held workloads on the operator's word: every held workload of the servers
    named (a comma-separated list, as a mass-outage notification gives it), or one workload."""
    servers = [s.strip() for s in (a.server or "").split(",") if s.strip()]
    if not servers and not a.workload:
        raise StackError("name --server op-…[,op-…] or --workload <name>")
    detail = {"server_ids": servers, "workload": a.workload, "requested_at": now_text()}
    body = invoke(aws, check_stack_name(a.stack), "operator", "ReleaseRequested", detail)
    if body.get("command") != "release":
        raise StackError(body.get("reason") or f"unexpected answer: {body}")
    for r in body["released"]:
        what = f"workload {r['workload']}" if r.get("workload") else "every held workload"
        say(f"==> {r['server_id']}: {what} released (incident {r['incident_id']}); relaunch requested")
    for server in body["skipped"]:
        say(f"==> {server}: no open incident, nothing held (back already?)")


def redrive_target(stack: str, message: dict) -> tuple[str, dict] | str:
    """Where a failed-events message goes again: (function name, payload) for a Lambda
    on-failure record or a rule's dead letter to one of the stack's functions; else why not.
    Pages (the paging rule's dead letters) are never replayed: an old trigger would reopen
    an alert resolved since."""
    try:
        body = json.loads(message["Body"])
    except json.JSONDecodeError:
        return "not JSON"
    attributes = {k: v.get("StringValue", "") for k, v in message.get("MessageAttributes", {}).items()}
    if isinstance(body, dict) and "requestContext" in body and "requestPayload" in body:
        # Lambda's on-failure destination: the invocation record, the event in requestPayload.
        target, payload = body["requestContext"].get("functionArn", ""), body["requestPayload"]
    else:
        # A rule's dead-letter queue: the event itself; the target in the message attributes.
        target, payload = attributes.get("TARGET_ARN", ""), body
    error = attributes.get("ERROR_CODE")
    failed = f" (it failed with {error})" if error else ""
    if ":function:" in target:
        name = target.split(":function:")[1].split(":")[0]
        if not name.startswith(f"{stack}-"):
            return f"its target {name} is not one of {stack}'s functions"
        return (name, payload)
    if ":api-destination/" in target:
        return f"a page{failed}: replaying it could reopen an alert resolved since; check PagerDuty, then purge it"
    return f"no target this command replays ({target or 'none named'}){failed}"


def cmd_redrive(aws: Aws, a: argparse.Namespace) -> None:
    """Replays the failed-events queue once the cause is fixed: each event goes once more to
    the function that failed it (asynchronously, as its rule would), or a page back onto the
    project bus; a message is deleted only once replayed. What cannot be replayed stays."""
    stack = check_stack_name(a.stack)
    try:
        url = aws.sqs.get_queue_url(QueueName=f"{stack}-failed-events")["QueueUrl"]
    except aws.sqs.exceptions.QueueDoesNotExist:
        raise StackError(f"stack {stack} has no failed-events queue: deploy it first (make deploy)") from None
    # Held out of sight while this runs; what is left is made visible again at the end.
    hold = 0 if a.dry_run else 300
    seen: set[str] = set()
    replayed, left = 0, []
    quiet = 0
    # SQS answers a receive from a sample of its servers: an empty or already-seen answer
    # is not the end until a few in a row say so.
    while quiet < 3:
        batch = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                        VisibilityTimeout=hold, MessageAttributeNames=["All"]).get("Messages", [])
        fresh = [m for m in batch if m["MessageId"] not in seen]
        quiet = 0 if fresh else quiet + 1
        for m in fresh:
            seen.add(m["MessageId"])
            target = redrive_target(stack, m)
            if isinstance(target, str):
                left.append((m, target))
                continue
            name, payload = target
            what = payload.get("detail-type", "an event") if isinstance(payload, dict) else "an event"
            if a.dry_run:
                say(f"==> would replay {what} to {name}")
                replayed += 1
                continue
            # Asynchronously, as its rule delivers it: the function's retries and on-failure
            # destination apply again.
            aws.lam.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(payload).encode())
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
            say(f"==> replayed {what} to {name}")
            replayed += 1
    for m, why in left:
        say(f"==> left {m['MessageId']} in the queue: {why}")
        if hold:
            with contextlib.suppress(aws.sqs.exceptions.ReceiptHandleIsInvalid):
                aws.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"], VisibilityTimeout=0)
    verb = "would replay" if a.dry_run else "replayed"
    say(f"==> {verb} {replayed} event(s); {len(left)} left in {stack}-failed-events")


def print_outputs(values: dict[str, str]) -> None:
    say("Outputs:")
    for k in sorted(values):
        say(f"  {k:<24} {values[k]}")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--poll-seconds", type=float, default=3.0, help="how often to read stack events")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, run, help_text: str) -> argparse.ArgumentParser:
        s = sub.add_parser(name, help=help_text)
        s.add_argument("--stack", help="the stack's name (default: the settings file's, else outposts-ha)")
        s.add_argument("--config", help="a deployment's settings file (docs/deploy.example.toml)")
        s.set_defaults(run=run)
        return s

    d = command("deploy", cmd_deploy, "create or update the stack")
    d.add_argument("--artifacts", required=True, help="folder with <function>/bootstrap.zip (cargo lambda build output)")
    d.add_argument("--email", help="address subscribed to notifications")
    d.add_argument("--param", action="append", help="another template parameter, KEY=VALUE")

    s = command("protect", cmd_protect, "protect an Outposts server, or every server of a file")
    s.add_argument("--server", help="one server, op-…")
    s.add_argument("--servers", help="a CSV file: server_id,site_name[,period,evaluation_periods,datapoints]")
    s.add_argument("--parallel", type=int, default=8, help="server stacks created at once (--servers)")
    s.add_argument("--period", type=int, default=60, choices=[60, 300])
    s.add_argument("--evaluation-periods", type=int, default=5)
    s.add_argument("--datapoints", type=int, default=3)
    s.add_argument("--name", default="", help="the site's name, e.g. 'Store 17, Main St'")
    s = command("unprotect", cmd_unprotect, "stop protecting a server")
    s.add_argument("--server", required=True)

    command("servers", cmd_servers, "list protected servers")
    command("outputs", cmd_outputs, "print the stack's outputs")
    command("status", cmd_status, "one row per protected server; exit 1 when one needs attention")
    i = command("incident", cmd_incident, "an incident's timeline from the ledger")
    i.add_argument("--id", help="the incident, inc-…")
    i.add_argument("--server", help="the server's open incident, else its newest")

    g = command("drill", cmd_drill, "dry-run every workload of a server, or of every server (or --game-day: a real failover)")
    g.add_argument("--server", help="one server; without it, every protected server")
    g.add_argument("--game-day", action="store_true", help="set the real alarm to ALARM after confirmation")
    g.add_argument("--yes", action="store_true", help="game day: do not ask for the stack's name to be typed")
    g.add_argument("--timeout", type=int, default=900, help="seconds to wait for the relaunch (game day)")

    m = command("maintenance", cmd_maintenance, "suppress relaunch for a server until a time (it lapses by itself)")
    m.add_argument("--server", required=True)
    m.add_argument("--until", required=True, help="now (ends it), +4h, or 2026-11-23T06:00Z")
    m.add_argument("--reason", default="planned maintenance")

    u = command("unfence", cmd_unfence, "give fenced originals their security groups back and remove the fencing marks "
                "(not their target groups: that is failback)")
    u.add_argument("--instance", help="one fenced instance, i-…")
    u.add_argument("--incident", help="every instance fenced for this incident, inc-…")
    u.add_argument("--force", action="store_true", help="also while the incident is open or the replacement runs")

    f = command("failback", cmd_failback, "move a server's stateless workloads home once it is back")
    f.add_argument("--server", required=True)
    f.add_argument("--yes", action="store_true", help="do not ask for the stack's name to be typed")
    f.add_argument("--timeout", type=int, default=900, help="seconds to wait for the originals to be healthy")

    r = command("release", cmd_release, "relaunch held workloads (partition, wave) on your word")
    r.add_argument("--server", help="op-…, or several comma-separated (a wave)")
    r.add_argument("--workload", help="one held workload, by name")

    r = command("redrive", cmd_redrive, "replay the failed-events queue once the cause is fixed")
    r.add_argument("--dry-run", action="store_true", help="list what would be replayed, touch nothing")

    x = command("delete", cmd_delete, "delete the stack, its server stacks and what the system created")
    x.add_argument("--purge-backups", action="store_true", help="also deregister backup AMIs and delete their snapshots")
    x.add_argument("--yes", action="store_true", help="do not ask for the stack's name to be typed")
    return p


def settle(args: argparse.Namespace, environment: dict[str, str]) -> str | None:
    """Fills the stack (and a deploy's email and parameters) from the settings file; returns
    the region it names. What the command line says wins; a stack or region named twice,
    differently, is refused."""
    settings = {"stack": None, "region": None, "architecture": None, "email": None, "parameters": {}}
    if args.config:
        try:
            settings = deploy_settings.load(args.config)
        except deploy_settings.SettingsError as e:
            raise StackError(str(e)) from None
    if args.stack and settings["stack"] and args.stack != settings["stack"]:
        raise StackError(f"STACK={args.stack} but {args.config} names stack {settings['stack']}: say it once")
    args.stack = args.stack or settings["stack"] or "outposts-ha"
    region = settings["region"]
    if region and environment.get("AWS_REGION") and environment["AWS_REGION"] != region:
        raise StackError(f"AWS_REGION is {environment['AWS_REGION']} but {args.config} names region {region}: say it once")
    if args.command == "deploy":
        unknown = sorted(set(settings["parameters"]) - template_parameters(MAIN_TEMPLATE))
        if unknown:
            raise StackError(f"{args.config}: {', '.join(unknown)} is not a parameter of infra/template.yaml "
                             "(docs/reference.md lists them)")
        given = dict(pair.partition("=")[::2] for pair in args.param or [])
        if settings["architecture"] and given.get("Architecture", settings["architecture"]) != settings["architecture"]:
            raise StackError(f"ARCH={given['Architecture']} but {args.config} names architecture {settings['architecture']}")
        # The file first, the command line after it: the later --param wins.
        args.param = [f"{k}={v}" for k, v in settings["parameters"].items()] + (args.param or [])
        if args.email is None:
            args.email = settings["email"]
    return region


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        region = settle(args, dict(os.environ))
        aws = Aws(region)
        # On stderr: what `servers` and `status` print stays readable by scripts.
        print(f"==> account {aws.account}, region {aws.region}, stack {args.stack}", file=sys.stderr)
        args.run(aws, args)
    except StackError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except ClientError as e:
        print(f"error: AWS refused: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
