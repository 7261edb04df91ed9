#!/usr/bin/env python3
"""`make demo`: the whole Outposts HA story on a laptop, against a local AWS emulator.

    demo.py --artifacts DIR [--keep-logs DIR]

DIR holds <function>/bootstrap.zip as `make build` writes them. The demo starts moto
server (with the doubles in tests/emulator/) on 127.0.0.1, deploys the real templates with
stackctl, runs each function's bootstrap from its zip under the project's local Lambda
runner (tests/emulator/local_lambda.py: Lambda's Runtime and Invoke APIs, by the deployed
function's name) with the environment CloudFormation gave the deployed function, and
routes events to them by the deployed rules. stackctl's requests to the functions (the
incident's story, read through the operator function) reach the same runner. Then: a
backup cycle, server A fails, its workloads relaunch and serve, server A returns and its
originals are fenced. Everything it started is stopped and deleted when it ends, also on
Ctrl-C; a failed step exits non-zero and says which.

Where moto falls short, the demo says what plays AWS's part:
- EventBridge cannot invoke Lambda in moto (PutEvents fails when a rule targets a
  function). Each rule target naming one of the stack's functions is pointed at a
  delivery queue instead, keeping the rule, its pattern, target id, retry policy and
  dead-letter queue; a deliverer invokes the function from the queue as EventBridge's
  asynchronous invoke would, retrying a failed invocation and then dead-lettering it.
- Schedules never fire, and moto matches a schedule rule (no pattern) against every event
  on its bus, which EventBridge never does: the schedule rule's target is pointed at a
  queue nobody reads, and the demo delivers the rule's "Scheduled Event" itself.
- CloudWatch alarms never evaluate: the server's alarm (from protected-server.yaml) is
  set with SetAlarmState, as `make drill GAMEDAY=1` does; the emulator emits the
  alarm's state-change event, as CloudWatch does.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import io
import json
import os
import pathlib
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
import zipfile

import boto3

import stackctl

REPO = pathlib.Path(__file__).resolve().parents[1]
EMULATOR = REPO / "tests" / "emulator" / "moto_with_doubles.py"
sys.path.insert(0, str(EMULATOR.parent))
import local_lambda  # noqa: E402

REGION = "eu-west-1"
STACK = "ohademo"
SERVER_A = "op-0a1b2c3d4e5f60718"
SERVER_B = "op-0f9e8d7c6b5a40312"
# The standby servers the replacements run on.
STANDBY_A, STANDBY_B = "op-0a1b2c3d4e5f6071a", "op-0f9e8d7c6b5a4031b"
TAGS = stackctl.TAGS
ATTEMPTS = 3  # deliveries of one event before it is dead-lettered
STEP_TIMEOUT = 60.0


class DemoFailed(Exception):
    """A step of the story did not happen; the message says which and what was seen."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class StopRequests:
    """Ctrl-C and SIGTERM. CPython runs signal handlers in the main thread only, and with
    other threads running it can notice a signal late or, in practice, not until the story
    ends. The C-level handler always writes the signal number to the wakeup fd at once,
    so the main thread's waits watch that fd: the story stops within one wait."""

    def __init__(self) -> None:
        self.received: int | None = None
        self.wakeup, write_end = os.pipe()
        os.set_blocking(self.wakeup, False)
        os.set_blocking(write_end, False)
        signal.set_wakeup_fd(write_end)
        # Set explicitly: a shell starting the demo in the background leaves SIGINT ignored.
        signal.signal(signal.SIGINT, self.on_signal)
        signal.signal(signal.SIGTERM, self.on_signal)

    def on_signal(self, signum: int, frame) -> None:
        self.stop(signum)

    def stop(self, signum: int) -> None:
        # The first request ends the story; the clean-up that follows is not interrupted.
        if self.received is None:
            self.received = signum
            raise KeyboardInterrupt

    def sleep(self, seconds: float) -> None:
        ready, _, _ = select.select([self.wakeup], [], [], seconds)
        if ready and (received := os.read(self.wakeup, 64)):
            self.stop(received[0])


stop_requests: StopRequests | None = None


def pause(seconds: float) -> None:
    """time.sleep that ends the story at once on Ctrl-C or SIGTERM."""
    if stop_requests:
        stop_requests.sleep(seconds)
    else:
        time.sleep(seconds)


def wait_for_port(port: int, what: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        if process.poll() is not None:
            raise DemoFailed(f"{what} exited with {process.returncode} before listening on port {port}")
        if time.time() > deadline:
            raise DemoFailed(f"{what} did not listen on port {port} within {timeout:.0f} s")
        pause(0.1)


def wait_until(what: str, check, processes: "Processes", timeout: float = STEP_TIMEOUT):
    """Polls `check` until it returns something truthy; fails the step after `timeout`, or
    at once when one of the demo's processes has stopped."""
    deadline = time.time() + timeout
    while True:
        found = check()
        if found:
            return found
        if stopped := processes.exited():
            name = stopped[0].split()[0]
            raise DemoFailed(f"{what}: {', '.join(stopped)} stopped; its log says why:\n{processes.tail(name)}")
        if time.time() > deadline:
            raise DemoFailed(f"{what}: not within {timeout:.0f} s")
        pause(0.2)


class Story:
    """Timed, readable progress."""

    def __init__(self, out) -> None:
        self.out = out
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.phase_started = self.started

    def say(self, text: str = "") -> None:
        with self.lock:
            print(text, file=self.out, flush=True)

    def step(self, text: str) -> None:
        self.say(f"[{time.monotonic() - self.started:6.1f}s] {text}")

    def phase(self, title: str) -> None:
        self.phase_started = time.monotonic()
        self.say(f"\n== {title}")

    def phase_took(self) -> float:
        return time.monotonic() - self.phase_started


class Processes:
    """Child processes in sessions of their own, so Ctrl-C reaches only the demo, which
    then stops them in order (the stack is deleted while the emulator still runs)."""

    def __init__(self, logs: pathlib.Path) -> None:
        self.logs = logs
        self.running: list[tuple[str, subprocess.Popen]] = []
        self.runner: local_lambda.LocalLambda | None = None

    def start(self, name: str, argv: list[str], env: dict[str, str], cwd: pathlib.Path | None = None) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "w")
        p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running.append((name, p))
        return p

    def stop(self, names: set[str] | None = None) -> None:
        if self.runner and names is None:
            self.runner.stop()
            self.runner = None
        for name, p in reversed(self.running):
            if names is not None and name not in names:
                continue
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        self.running = [(n, p) for n, p in self.running if p.poll() is None]

    def exited(self) -> list[str]:
        functions = self.runner.exited() if self.runner else []
        return functions + [f"{n} (exit {p.returncode})" for n, p in self.running if p.poll() is not None]

    def tail(self, name: str, lines: int = 12) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
        return "\n".join(f"    {line}" for line in text)


class LocalFunctions:
    """Each deployed function's bootstrap from its zip, with the deployed function's
    environment, under the project's one local Lambda runner."""

    def __init__(self, processes: Processes, aws_env: dict[str, str], work: pathlib.Path,
                 session: boto3.session.Session) -> None:
        self.processes = processes
        self.aws_env = aws_env
        self.session = session
        self.work = work
        self.runner = local_lambda.LocalLambda(processes.logs, timeout=120).start()
        processes.runner = self.runner
        self.port = self.runner.port

    def start_function(self, binary: str, zip_path: pathlib.Path, configuration: dict) -> None:
        folder = self.work / binary
        folder.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(zip_path) as z:
            z.extract("bootstrap", folder)
        bootstrap = folder / "bootstrap"
        bootstrap.chmod(0o755)
        env = {
            **{k: str(v) for k, v in configuration.get("Environment", {}).get("Variables", {}).items()},
            **self.aws_env,
            # The function's own role, as Lambda gives it: the emulator enforces its policies.
            **local_lambda.role_credentials(self.session, configuration),
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(configuration.get("MemorySize", 128)),
            "AWS_LAMBDA_LOG_FORMAT": "JSON",
        }
        self.runner.add(configuration["FunctionName"], bootstrap, env)

    def invoke(self, binary: str, payload: bytes) -> tuple[bool, str]:
        ok, answer = self.runner.invoke_here(f"{STACK}-{binary}", payload)
        return ok, answer.decode(errors="replace")


def describe(event: dict) -> str:
    """One line saying what an event is about."""
    d = event.get("detail") or {}
    kind = event.get("detail-type", "?")
    if kind == "CloudWatch Alarm State Change":
        return f"{kind}: {d.get('alarmName')} {d.get('previousState', {}).get('value')} → {d.get('state', {}).get('value')}"
    if kind == "EC2 Instance State-change Notification":
        return f"{kind}: {d.get('instance-id')} {d.get('state')}"
    if kind == "EC2 Automation Execution Status-change Notification":
        return f"{kind}: {d.get('ExecutionId', '')[:8]}… {d.get('Status')}"
    about = d.get("workload") or d.get("server_id") or d.get("instance_id") or ""
    return f"{kind}{': ' + about if about else ''}"


class Routing:
    """The deployed rules, delivering to the local functions through delivery queues."""

    def __init__(self, story: Story, session: boto3.session.Session, local: LocalFunctions, dead_letters: str) -> None:
        self.story = story
        self.events = session.client("events")
        self.sqs = session.client("sqs")
        self.local = local
        self.dead_letters = dead_letters
        self.queues: dict[str, str] = {}  # binary -> delivery queue URL
        self.routes: list[tuple[str, str, str, bool]] = []  # (bus, rule, binary, is a schedule)
        self.schedules: dict[str, str] = {}  # rule ARN -> binary
        self.in_flight = 0
        self.deliveries: list[dict] = []
        self.failures: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def queue_for(self, binary: str) -> str:
        if binary not in self.queues:
            url = self.sqs.create_queue(QueueName=f"{STACK}-deliver-{binary}", Attributes={"VisibilityTimeout": "180"})["QueueUrl"]
            self.queues[binary] = url
        return self.queues[binary]

    def connect(self, functions: dict[str, str], buses: list[str]) -> None:
        """Points every rule target naming one of `functions` (ARN -> binary) at its queue."""
        for bus in buses:
            for rule in self.events.list_rules(EventBusName=bus)["Rules"]:
                targets = self.events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
                moved = []
                for target in targets:
                    binary = functions.get(target["Arn"])
                    if binary is None:
                        continue
                    url = self.queue_for(binary)
                    if rule.get("ScheduleExpression"):
                        self.schedules[rule["Arn"]] = binary
                        url = self.sqs.create_queue(QueueName=f"{STACK}-schedule-sink")["QueueUrl"]
                    arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
                    moved.append({**target, "Arn": arn})
                    self.routes.append((bus, rule["Name"], binary, bool(rule.get("ScheduleExpression"))))
                if moved:
                    self.events.put_targets(Rule=rule["Name"], EventBusName=bus, Targets=moved)
        for binary, url in self.queues.items():
            t = threading.Thread(target=self.deliver_from, args=(binary, url), daemon=True, name=f"deliver-{binary}")
            t.start()
            self.threads.append(t)

    def fire_schedule(self, account: str, binary: str = "backup-scheduler") -> str:
        """What EventBridge sends a schedule rule's target (by function) when the rule fires."""
        rule_arn = next(arn for arn, target in self.schedules.items() if target == binary)
        event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
                 "account": account, "time": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "region": REGION, "resources": [rule_arn], "detail": {}}
        self.sqs.send_message(QueueUrl=self.queues[binary], MessageBody=json.dumps(event))
        return rule_arn

    def redeliver(self, detail_type: str) -> None:
        """Sends the newest delivered event of this type again, as EventBridge may."""
        with self.lock:
            latest = next(d for d in reversed(self.deliveries) if d["detail_type"] == detail_type)
        self.sqs.send_message(QueueUrl=self.queues[latest["binary"]], MessageBody=latest["body"])

    def deliver_from(self, binary: str, url: str) -> None:
        while not self.stopping.is_set():
            try:
                got = self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1,
                                               AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])
            except Exception as e:  # noqa: BLE001 - the emulator is going away at the end
                if not self.stopping.is_set():
                    self.failures.append(f"reading {binary}'s delivery queue: {e}")
                return
            for m in got:
                with self.lock:
                    self.in_flight += 1
                try:
                    self.deliver(binary, url, m)
                finally:
                    with self.lock:
                        self.in_flight -= 1

    def deliver(self, binary: str, url: str, message: dict) -> None:
        body = message["Body"]
        event = json.loads(body)
        attempt = int(message["Attributes"]["ApproximateReceiveCount"])
        started = time.monotonic()
        ok, answer = self.local.invoke(binary, body.encode())
        ms = (time.monotonic() - started) * 1000
        if self.stopping.is_set():
            return
        with self.lock:
            self.deliveries.append({"binary": binary, "detail_type": event.get("detail-type"), "body": body, "ok": ok})
        if ok:
            self.story.say(f"           → {binary:<16} {describe(event)}  ({ms:.0f} ms)")
            self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            return
        reason = answer.strip().replace("\n", " ")[:300]
        if attempt < ATTEMPTS:
            self.story.say(f"           ✗ {binary:<16} {describe(event)}: failed, retried in 2 s: {reason}")
            self.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=2)
            return
        self.story.say(f"           ✗ {binary:<16} {describe(event)}: failed {attempt} times, dead-lettered: {reason}")
        self.failures.append(f"{binary} failed on {describe(event)}: {reason}")
        self.sqs.send_message(QueueUrl=self.dead_letters, MessageBody=body)
        self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    def settled(self) -> bool:
        """No invocation in flight and nothing waiting in any delivery queue."""
        with self.lock:
            if self.in_flight:
                return False
        for url in self.queues.values():
            a = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            if int(a["ApproximateNumberOfMessages"]) or int(a["ApproximateNumberOfMessagesNotVisible"]):
                return False
        return True

    def wait_settled(self, timeout: float = STEP_TIMEOUT) -> None:
        # Events may still be on their way from the emulator's own timers: settled twice, apart.
        wait_until("every event delivered", lambda: self.settled() and (pause(1.0) or self.settled()),
                   self.local.processes, timeout)
        if self.failures:
            raise DemoFailed("; ".join(self.failures))

    def stop(self) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=5)


class Fleet:
    """Two Outposts servers as the emulator can hold them: subnets for each server and its
    standby, tagged launch templates (the workloads), their running originals and target groups."""

    def __init__(self, session: boto3.session.Session, account: str) -> None:
        self.account = account
        self.ec2 = session.client("ec2")
        self.elb = session.client("elbv2")
        self.vpc = self.ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        self.image = self.ec2.describe_images()["Images"][0]["ImageId"]
        self.workloads: list[dict] = []
        self.security_groups: dict[str, str] = {}

    def subnet(self, cidr: str, name: str, server: str) -> str:
        """A subnet of an Outposts server whose interfaces at device index 1 are local network
        interfaces (LNIs): how the store's own devices reach its instances."""
        tags = [{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": name}]}]
        outpost = f"arn:aws:outposts:{REGION}:{self.account}:outpost/{server}"
        subnet = self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=cidr, TagSpecifications=tags,
                                        OutpostArn=outpost)["Subnet"]["SubnetId"]
        self.ec2.modify_subnet_attribute(SubnetId=subnet, EnableLniAtDeviceIndex=1)
        return subnet

    def helper_subnet(self, cidr: str) -> str:
        """The VPC's subnet in the Region where the backup runbook's helper instance runs."""
        tags = [{"ResourceType": "subnet", "Tags": [{"Key": "Name", "Value": "backup-helper"},
                                                    {"Key": TAGS["backup_helper"], "Value": "backups"}]}]
        return self.ec2.create_subnet(VpcId=self.vpc, CidrBlock=cidr, TagSpecifications=tags)["Subnet"]["SubnetId"]

    def group(self, name: str, description: str) -> str:
        if name not in self.security_groups:
            self.security_groups[name] = self.ec2.create_security_group(
                GroupName=name, Description=description, VpcId=self.vpc)["GroupId"]
        return self.security_groups[name]

    def target_group(self, name: str) -> str:
        return self.elb.create_target_group(Name=name, Protocol="HTTP", Port=80, VpcId=self.vpc,
                                            TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]

    def workload(self, server: str, name: str, home: str, standby: list[str], priority: int,
                 backup_parameter: str | None = None, target_group: str | None = None,
                 probe: str | None = None, warm: bool = False) -> dict:
        lt_tags = {TAGS["protected_server"]: server, TAGS["workload"]: name, TAGS["subnets"]: ",".join(standby),
                   TAGS["priority"]: str(priority)}
        if warm:
            lt_tags[TAGS["mode"]] = "warm"
        instance_tags = {TAGS["workload"]: name}
        original_tags = {TAGS["protected_server"]: server}
        if probe:
            # Its LNI address on the store network, where the witness probes it; the
            # emulator's Run Command double answers for the instance carrying it.
            lt_tags[TAGS["probe"]] = probe
            original_tags["run-command-double:address"] = probe.split(":")[0]
        image = self.image
        if backup_parameter:
            lt_tags[TAGS["backup_parameter"]] = instance_tags[TAGS["backup_parameter"]] = backup_parameter
            image = f"resolve:ssm:{backup_parameter}"
        if target_group:
            lt_tags[TAGS["target_groups"]] = target_group

        def tag_list(tags: dict[str, str]) -> list[dict]:
            return [{"Key": k, "Value": v} for k, v in tags.items()]

        apps = self.group(f"apps-{server}", f"workloads on {server}")
        store_lan = self.group(f"store-lan-{server}", f"store devices on {server}")
        # As on a real Outposts server: a primary interface and the LNI at index 1. Relaunch
        # places both at the destination.
        lt = self.ec2.create_launch_template(
            LaunchTemplateName=f"lt-{name}",
            LaunchTemplateData={"ImageId": image, "InstanceType": "m5.large",
                                "NetworkInterfaces": [{"DeviceIndex": 0, "Groups": [apps], "DeleteOnTermination": True},
                                                      {"DeviceIndex": 1, "Groups": [store_lan]}],
                                "TagSpecifications": [{"ResourceType": "instance", "Tags": tag_list(instance_tags)}]},
            TagSpecifications=[{"ResourceType": "launch-template", "Tags": tag_list(lt_tags)}],
        )["LaunchTemplate"]["LaunchTemplateId"]
        original = self.ec2.run_instances(
            LaunchTemplate={"LaunchTemplateId": lt}, ImageId=self.image, MinCount=1, MaxCount=1,
            NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": home, "Groups": [apps]},
                               {"DeviceIndex": 1, "SubnetId": home, "Groups": [store_lan]}],
            TagSpecifications=[{"ResourceType": "instance", "Tags": tag_list({**instance_tags, **original_tags})}],
        )["Instances"][0]["InstanceId"]
        group_arn = None
        if target_group:
            group_arn = self.target_group(target_group)
            self.elb.register_targets(TargetGroupArn=group_arn, Targets=[{"Id": original}])
        w = {"server": server, "name": name, "original": original, "parameter": backup_parameter,
             "target_group": target_group, "target_group_arn": group_arn, "standby": standby, "warm": warm}
        self.workloads.append(w)
        return w

    def witness(self, server: str, subnet: str) -> str:
        """An instance on the store network, on the standby server: the server's witness."""
        return self.ec2.run_instances(
            ImageId=self.image, MinCount=1, MaxCount=1, SubnetId=subnet,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [
                {"Key": "Name", "Value": f"witness-for-{server}"}, {"Key": TAGS["witness_for"], "Value": server}]}],
        )["Instances"][0]["InstanceId"]

    def dies(self, server: str) -> None:
        """The server's box dies: its originals stop answering on the store network."""
        originals = [w["original"] for w in self.workloads if w["server"] == server]
        self.ec2.delete_tags(Resources=originals, Tags=[{"Key": "run-command-double:address"}])

    def instance(self, instance_id: str) -> dict:
        return self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]

    def targets(self, group_arn: str) -> list[str]:
        found = self.elb.describe_target_health(TargetGroupArn=group_arn)["TargetHealthDescriptions"]
        return sorted(f"{d['Target']['Id']} {d['TargetHealth']['State']}" for d in found)


def email_filter_policy(minimum: str) -> dict:
    """The stack's email subscription filter policy for EmailMinimumSeverity=`minimum`, as
    template.yaml builds it (its SeverityFilter mapping; infra/tests checks they agree)."""
    severities = {"info": ["info", "warning", "critical"], "warning": ["warning", "critical"], "critical": ["critical"]}
    return {"$or": [{"severity": severities[minimum]},
                    {"event_type": ["IncidentOpened", "FailoverCompleted", "IncidentClosed"]},
                    {"severity": [{"exists": False}]}]}


def tags_of(instance: dict) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


def interfaces_of(instance: dict) -> list[dict]:
    return sorted(instance.get("NetworkInterfaces", []), key=lambda n: n["Attachment"]["DeviceIndex"])


def group_names(interface: dict) -> str:
    return ", ".join(g["GroupName"] for g in interface.get("Groups", [])) or "-"


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min"


class Demo:
    def __init__(self, artifacts: pathlib.Path, out, work: pathlib.Path) -> None:
        self.artifacts = artifacts
        self.story = Story(out)
        self.work = work
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.processes = Processes(self.logs)
        self.routing: Routing | None = None
        self.deployed = False
        self.summary: list[dict] = []
        self.notifications: list[str] = []

    # --- setting the scene -----------------------------------------------------------

    def start_emulator(self) -> None:
        port = free_port()
        python = pathlib.Path(sys.executable)
        env = {**os.environ, "EMULATOR_EC2_STATE_EVENTS": "1", "IAM_DOUBLE_DENIALS": str(self.logs / "iam-denials.log")}
        p = self.processes.start("moto", [str(python), str(EMULATOR), "-H", "127.0.0.1", "-p", str(port)], env)
        wait_for_port(port, "moto server", p)
        self.aws_env = {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        os.environ.update(self.aws_env)
        for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
            os.environ.pop(k, None)
        self.session = boto3.session.Session(region_name=REGION)
        self.account = self.session.client("sts").get_caller_identity()["Account"]
        self.story.step(f"emulator: moto server with the doubles for what it lacks, on 127.0.0.1:{port}")

    def stackctl(self, *args: str) -> str:
        """Runs a stackctl command; its full output goes to the log, failures to the story."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.2", *args])
        (self.logs / "stackctl.log").open("a").write(out.getvalue())
        if code != 0:
            raise DemoFailed(f"stackctl {' '.join(args)} failed:\n{out.getvalue()[-2000:]}")
        return out.getvalue()

    def deploy(self) -> None:
        arch = "arm64" if os.uname().machine in ("aarch64", "arm64") else "x86_64"
        self.stackctl("deploy", "--stack", STACK, "--artifacts", str(self.artifacts), "--email", "ops@example.com",
                      "--param", f"Architecture={arch}",
                      "--param", f"BackupAutomationRoleArn=arn:aws:iam::{self.account}:role/outposts-ha-backup")
        self.deployed = True
        self.outputs = stackctl.outputs(stackctl.Aws(), STACK)
        resources = self.session.client("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]
        self.story.step(f"deployed stack {STACK} from infra/template.yaml: {len(resources)} resources, "
                        f"functions from {self.artifacts}")

    def start_functions(self) -> None:
        lam = self.session.client("lambda")
        self.local = LocalFunctions(self.processes, self.aws_env, self.work / "functions", self.session)
        arns = {}
        for binary in stackctl.FUNCTIONS:
            configuration = lam.get_function_configuration(FunctionName=f"{STACK}-{binary}")
            self.local.start_function(binary, self.artifacts / binary / "bootstrap.zip", configuration)
            arns[configuration["FunctionArn"]] = binary
        self.story.step(f"local Lambda runtime: the project's runner on 127.0.0.1:{self.local.port}; "
                        f"{len(arns)} functions run their bootstrap from the deployed zip with the deployed environment")
        # stackctl's requests to the functions go to the runner; everything else to the emulator.
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = self.local.runner.url
        self.operator_tooling = stackctl.Aws()
        self.routing = Routing(self.story, self.session, self.local, self.outputs["FailedEventsQueueUrl"])
        self.routing.connect(arns, [self.outputs["EventBusName"], "default"])
        self.story.step("events reach them by the deployed rules (their Lambda targets now deliver locally):")
        for bus, rule, binary, schedule in sorted(self.routing.routes):
            fired = "  (a schedule: the demo fires it)" if schedule else ""
            self.story.say(f"           {bus:<16} {rule:<48} → {binary}{fired}")
        sns, sqs = self.session.client("sns"), self.session.client("sqs")
        self.inbox = sqs.create_queue(QueueName=f"{STACK}-operator-inbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=self.inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        # Subscribed as the stack's email subscription is: its filter policy at the default.
        sns.subscribe(TopicArn=self.outputs["NotificationTopicArn"], Protocol="sqs", Endpoint=inbox_arn,
                      Attributes={"FilterPolicyScope": "MessageAttributes",
                                  "FilterPolicy": json.dumps(email_filter_policy("warning"))})

    def create_fleet(self) -> None:
        self.fleet = fleet = Fleet(self.session, self.account)
        home_a, home_b = fleet.subnet("10.0.1.0/24", "server-a", SERVER_A), fleet.subnet("10.0.2.0/24", "server-b", SERVER_B)
        standby_a = fleet.subnet("10.0.11.0/24", "standby-for-a", STANDBY_A)
        standby_b = fleet.subnet("10.0.12.0/24", "standby-for-b", STANDBY_B)
        helper = fleet.helper_subnet("10.0.250.0/24")
        fleet.workload(SERVER_A, "pos-db", home_a, [standby_a], 1, backup_parameter=f"/outposts-ha/{STACK}/pos-db",
                       probe="192.168.10.21:5432")
        fleet.workload(SERVER_A, "pos-app", home_a, [standby_a], 10, target_group="pos-app-web", warm=True)
        # Its preferred standby subnet is gone: it must use its fallback.
        fleet.workload(SERVER_A, "kiosk", home_a, ["subnet-0000000000000dead", standby_a], 50, target_group="kiosk-web")
        fleet.workload(SERVER_B, "records", home_b, [standby_b], 1, backup_parameter=f"/outposts-ha/{STACK}/records",
                       probe="192.168.20.21:5432")
        fleet.workload(SERVER_B, "imaging", home_b, [standby_b], 10, target_group="imaging-web")
        self.story.step(f"fleet: server A {SERVER_A}, server B {SERVER_B}; five workloads:")
        self.story.say(f"           {'server':<7} {'workload':<9} {'original':<21} {'kind':<44} standby subnets")
        for w in fleet.workloads:
            kind = f"stateful, backup {w['parameter']}" if w["parameter"] else f"target group {w['target_group']}"
            kind += ", warm" if w["warm"] else ""
            server = "A" if w["server"] == SERVER_A else "B"
            self.story.say(f"           {server:<7} {w['name']:<9} {w['original']:<21} {kind:<44} {', '.join(w['standby'])}")
        # Protected once they are the account's Outposts (make protect checks with ListOutposts).
        stores = self.work / "stores.csv"
        stores.write_text(f"server_id,site_name\n{SERVER_A},\"Store 17, Main St\"\n{SERVER_B},\n")
        self.stackctl("protect", "--stack", STACK, "--servers", str(stores))
        self.alarms = {s: self.outputs["AlarmNamePrefix"] + s for s in (SERVER_A, SERVER_B)}
        cw = self.session.client("cloudwatch")
        found = {a["AlarmName"]: a["StateValue"] for a in cw.describe_alarms(AlarmNamePrefix=self.outputs["AlarmNamePrefix"])["MetricAlarms"]}
        if sorted(found) != sorted(self.alarms.values()):
            raise DemoFailed(f"protecting the servers should create their alarms {sorted(self.alarms.values())}; found {found}")
        self.story.step("make protect SERVERS=stores.csv: servers A and B (infra/protected-server.yaml): alarms "
                        + ", ".join(f"{n} ({found[n]})" for n in sorted(found)))
        self.story.step(f"backup helper subnet (in the Region, tagged {TAGS['backup_helper']}): {helper}")
        for server, name, subnet in ((SERVER_A, "A", standby_a), (SERVER_B, "B", standby_b)):
            witness = fleet.witness(server, subnet)
            self.story.step(f"server {name}'s witness: {witness} on its standby, on the store network "
                            f"({TAGS['witness_for']}={server})")
        self.routing.wait_settled()
        # The standby reconcile (StandbyReconcileSchedule; schedules never fire in the emulator).
        reconcile = {"detail-type": "StandbyReconcileRequested", "source": "outposts-ha",
                     "detail": {"requested_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}}
        ok, answer = self.local.invoke("relaunch", json.dumps(reconcile).encode())
        if not ok:
            raise DemoFailed(f"the standby reconcile failed: {answer}")
        self.routing.wait_settled()
        found = fleet.ec2.describe_instances(Filters=[
            {"Name": f"tag:{TAGS['role']}", "Values": [TAGS["role_standby"]]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        standbys = [(tags_of(i).get(TAGS["workload"]), i["InstanceId"]) for r in found["Reservations"] for i in r["Instances"]]
        if [w for w, _ in standbys] != ["pos-app"]:
            raise DemoFailed(f"the reconcile should start one standby, pos-app's; found {standbys}")
        self.story.step(f"warm standby of pos-app (outposts-ha:mode=warm): {standbys[0][1]} running on standby-for-a, "
                        "not serving; the other workloads are cold")

    # --- the story -------------------------------------------------------------------

    def backup_cycle(self) -> None:
        self.story.phase("1. A backup cycle: the stateful instances are backed up, their parameters move")
        ssm = self.session.client("ssm")
        stateful = [w for w in self.fleet.workloads if w["parameter"]]

        def value(name: str) -> str | None:
            with contextlib.suppress(ssm.exceptions.ParameterNotFound):
                return ssm.get_parameter(Name=name)["Parameter"]["Value"]
            return None

        before = {w["name"]: value(w["parameter"]) for w in stateful}
        rule = self.routing.fire_schedule(self.account)
        self.story.step(f"the backup schedule fires ({rule.rsplit('/', 1)[-1]})")
        moved = wait_until("both backup parameters moved to new AMIs",
                           lambda: all(value(w["parameter"]) not in (None, before[w["name"]]) for w in stateful) and
                           {w["name"]: value(w["parameter"]) for w in stateful}, self.processes)
        self.routing.wait_settled()
        ec2 = self.session.client("ec2")
        for w in stateful:
            image = ec2.describe_images(ImageIds=[moved[w["name"]]])["Images"][0]
            tags = tags_of(image)
            if tags.get(TAGS["backup_of"]) != w["original"]:
                raise DemoFailed(f"{moved[w['name']]} should be tagged as a backup of {w['original']}: {tags}")
            self.story.step(f"{w['name']}: {w['parameter']} {before[w['name']] or '(none)'} → {moved[w['name']]} "
                            f"({image['State']}, taken {tags.get(TAGS['backup_taken_at'])})")
            execution = ssm.get_automation_execution(AutomationExecutionId=tags[TAGS["backup_execution"]])
            given = execution["AutomationExecution"]["Parameters"]
            self.story.step(f"    runbook helper: subnet {given['SubnetId'][0]}, type {given['TemporaryInstancesType'][0]}")
        self.backups = moved
        self.story.step(f"backup cycle took {self.story.phase_took():.1f} s")

    def incident_of(self, server: str) -> dict | None:
        """The incident's story as the operator function reads it from the ledger (the open
        one, or the one this demo followed)."""
        return stackctl.incident_story(self.operator_tooling, STACK, server, getattr(self, "incident", None))

    def failover(self) -> None:
        self.story.phase("2. Server A fails: detection → incident → relaunch → running → serving")
        cw = self.session.client("cloudwatch")
        self.failed_at = time.monotonic()
        self.fleet.dies(SERVER_A)
        cw.set_alarm_state(AlarmName=self.alarms[SERVER_A], StateValue="ALARM",
                           StateReason="Threshold Crossed: 3 out of the last 5 datapoints were less than the threshold (1.0).")
        self.story.step(f"server A's box dies: alarm {self.alarms[SERVER_A]} → ALARM; "
                        "its database no longer answers the witness")
        expected = sorted(w["name"] for w in self.fleet.workloads if w["server"] == SERVER_A)

        def serving():
            story = self.incident_of(SERVER_A)
            if not story:
                return None
            names = sorted(w["workload"] for w in story["workloads"])
            return story if names == expected and all(w.get("serving_at") for w in story["workloads"]) else None

        story = wait_until(f"every workload of server A ({', '.join(expected)}) relaunched and serving",
                           serving, self.processes)
        workloads = story["workloads"]
        self.incident = story["incident_id"]
        self.routing.wait_settled()
        self.story.step(f"incident {self.incident}: {len(workloads)} workloads serving, "
                        f"{time.monotonic() - self.failed_at:.1f} s after the alarm")
        detected = parse_time(story["detected_at"])
        for w in sorted(workloads, key=lambda w: w["serving_at"]):
            replacement = self.fleet.instance(w["replacement_instance_id"])
            promoted = TAGS["promoted_at"] in tags_of(replacement)
            how = "warm: its standby promoted, nothing launched" if promoted else "cold: launched"
            took = (parse_time(w["serving_at"]) - detected).total_seconds()
            self.story.step(f"{w['workload']} ({how}): {w['replacement_instance_id']} serving {took:.1f} s after detection")
        for w in self.fleet.workloads:
            if w["target_group_arn"]:
                self.story.step(f"target group {w['target_group']}: {', '.join(self.fleet.targets(w['target_group_arn']))}")

        before = len(self.replacements())
        self.routing.redeliver("CloudWatch Alarm State Change")
        self.routing.wait_settled()
        after = len(self.replacements())
        if after != before:
            raise DemoFailed(f"the redelivered alarm launched again: {before} replacements became {after}")
        self.story.step(f"the same alarm event delivered again (EventBridge delivers at least once): still {after} replacements")
        self.story.step(f"failover took {self.story.phase_took():.1f} s")
        self.print_notifications()

    def replacements(self) -> list[dict]:
        found = self.fleet.ec2.describe_instances(Filters=[
            {"Name": f"tag:{TAGS['role']}", "Values": [TAGS["role_replacement"]]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        return [i for r in found["Reservations"] for i in r["Instances"]]

    def recovery(self) -> None:
        self.story.phase("3. Server A comes back: its replaced originals are fenced, the incident closes")
        cw = self.session.client("cloudwatch")
        cw.set_alarm_state(AlarmName=self.alarms[SERVER_A], StateValue="OK", StateReason="Threshold Crossed: connected again.")
        self.story.step(f"server A reconnects: alarm {self.alarms[SERVER_A]} → OK")
        closed = wait_until("the incident closed after fencing",
                            lambda: (f := self.incident_of(SERVER_A)) and f["status"] == "closed" and f,
                            self.processes)
        self.routing.wait_settled()
        for w in self.fleet.workloads:
            i = self.fleet.instance(w["original"])
            tags = tags_of(i)
            if w["server"] == SERVER_A:
                if TAGS["fenced"] not in tags:
                    raise DemoFailed(f"{w['name']}'s original {w['original']} should be fenced: {tags}")
                self.story.step(f"{w['name']}: original {w['original']} fenced ({i['State']['Name']})")
                for n in interfaces_of(i):
                    kept = tags.get(f"{TAGS['fenced_groups']}:{n['NetworkInterfaceId']}")
                    if kept is None:
                        raise DemoFailed(f"{w['name']}: the groups of {n['NetworkInterfaceId']} should be kept: {tags}")
                    self.story.step(f"    eth{n['Attachment']['DeviceIndex']} {n['NetworkInterfaceId']}: "
                                    f"{group_names(n)} (kept: {kept})")
            elif TAGS["fenced"] in tags:
                raise DemoFailed(f"{w['name']} on server B was fenced, though server B never failed")
        self.story.step(f"incident {self.incident} {closed['status']}; server B's originals untouched")
        self.story.step(f"recovery took {self.story.phase_took():.1f} s")
        self.print_notifications()

    def unfence(self) -> None:
        self.story.phase("4. The store needs pos-app's original back: make unfence")
        w = next(w for w in self.fleet.workloads if w["name"] == "pos-app")
        fenced = {n["NetworkInterfaceId"]: n for n in interfaces_of(self.fleet.instance(w["original"]))}
        try:
            self.stackctl("unfence", "--stack", STACK, "--instance", w["original"])
            raise DemoFailed("unfence should refuse while the replacement runs")
        except DemoFailed as refused:
            if "still runs" not in str(refused):
                raise
        self.story.step(f"make unfence INSTANCE={w['original']}: refused, its replacement still runs "
                        "(two copies would serve)")
        self.stackctl("unfence", "--stack", STACK, "--instance", w["original"], "--force")
        i = self.fleet.instance(w["original"])
        self.story.step(f"make unfence INSTANCE={w['original']} FORCE=1: put back, told as critical")
        for n in interfaces_of(i):
            kept = fenced[n["NetworkInterfaceId"]]
            self.story.step(f"    eth{n['Attachment']['DeviceIndex']} {n['NetworkInterfaceId']}: "
                            f"{group_names(kept)} → {group_names(n)}")
        left = [k for k in tags_of(i) if k.startswith(TAGS["fenced"])]
        if left or any(group_names(n) == group_names(fenced[n["NetworkInterfaceId"]]) for n in interfaces_of(i)):
            raise DemoFailed(f"{w['original']} should have its own groups back and no fencing marks: {i}")
        self.routing.wait_settled()
        self.print_notifications()

    def stackctl_answer(self, *args: str) -> tuple[int, str]:
        """Runs a stackctl command whose non-zero exit is an answer (status, fail-back)."""
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = stackctl.main(["--poll-seconds", "0.2", *args])
        (self.logs / "stackctl.log").open("a").write(out.getvalue())
        return code, out.getvalue()

    def home_and_fleet(self) -> None:
        self.story.phase("5. Back home, and the fleet at a glance: failback, drill, status, incident")
        code, out = self.stackctl_answer("failback", "--stack", STACK, "--server", SERVER_A, "--yes")
        self.story.step(f"make failback SERVER={SERVER_A} (exit {code}):")
        for line in out.splitlines():
            if line.startswith("    "):
                self.story.say(f"       {line}")
        self.routing.wait_settled()
        for w in self.fleet.workloads:
            if w["server"] == SERVER_A and w["target_group"]:
                self.story.step(f"target group {w['target_group']}: {', '.join(self.fleet.targets(w['target_group_arn']))}")
        out = self.stackctl("drill", "--stack", STACK)
        self.story.step("make drill (every protected server, one request, one digest):")
        for line in out.splitlines():
            if not line.startswith("==> account"):
                self.story.say(f"           {line}")
        code, out = self.stackctl_answer("status", "--stack", STACK)
        self.story.step(f"make status (exit {code}):")
        for line in out.splitlines():
            if not line.startswith("==> account"):
                self.story.say(f"           {line}")
        out = self.stackctl("incident", "--stack", STACK, "--server", SERVER_A)
        self.story.step(f"make incident SERVER={SERVER_A}:")
        for line in out.splitlines():
            if not line.startswith("==> account"):
                self.story.say(f"           {line}")
        self.print_notifications()

    def partition(self) -> None:
        self.story.phase("6. Server B's uplink drops, the box runs on: its database is held, not copied")
        cw = self.session.client("cloudwatch")
        cw.set_alarm_state(AlarmName=self.alarms[SERVER_B], StateValue="ALARM",
                           StateReason="Threshold Crossed: 3 out of the last 5 datapoints were less than the threshold (1.0).")
        self.story.step(f"server B's store loses its broadband: alarm {self.alarms[SERVER_B]} → ALARM; "
                        "the box and its database run on, reachable on the store network")

        def story_of_b() -> dict | None:
            return stackctl.incident_story(self.operator_tooling, STACK, SERVER_B, None)

        def serving(names: list[str]):
            def check():
                story = story_of_b()
                by_name = {w["workload"]: w for w in (story or {}).get("workloads", [])}
                return story if all(by_name.get(n, {}).get("serving_at") for n in names) else None
            return check

        story = wait_until("imaging relaunched and serving", serving(["imaging"]), self.processes)
        self.routing.wait_settled()
        story = story_of_b()
        launched = sorted(w["workload"] for w in story["workloads"])
        if launched != ["imaging"]:
            raise DemoFailed(f"only imaging should be relaunched while records answers the witness: {launched}")
        self.story.step(f"incident {story['incident_id']}: imaging relaunched and serving; records held "
                        "(its original answered the witness)")
        seen = len(self.notifications)
        self.print_notifications()
        held = [n for n in self.notifications[seen:] if n.startswith("[CRITICAL]") and "HELD" in n]
        if len(held) != 1:
            raise DemoFailed(f"one critical notification should say records is held: {self.notifications[seen:]}")

        out = self.stackctl("release", "--stack", STACK, "--server", SERVER_B)
        self.story.step(f"the store confirms the box is gone after all: make release SERVER={SERVER_B}")
        for line in out.strip().splitlines():
            self.story.say(f"           {line}")
        wait_until("records relaunched on the operator's word and serving", serving(["imaging", "records"]),
                   self.processes)
        self.routing.wait_settled()
        self.story.step("records relaunched from its newest backup")

        cw.set_alarm_state(AlarmName=self.alarms[SERVER_B], StateValue="OK", StateReason="Threshold Crossed: connected again.")
        self.story.step(f"server B's uplink returns: alarm {self.alarms[SERVER_B]} → OK")
        wait_until("server B's incident closed", lambda: (f := story_of_b()) is None or f["status"] == "closed",
                   self.processes)
        self.routing.wait_settled()
        for w in (w for w in self.fleet.workloads if w["server"] == SERVER_B):
            tags = tags_of(self.fleet.instance(w["original"]))
            fenced = TAGS["fenced"] in tags
            if fenced != (w["name"] == "imaging"):
                raise DemoFailed(f"{w['name']}'s original {w['original']}: fenced {fenced}: {tags}")
            self.story.step(f"{w['name']}: original {w['original']} " + (
                "fenced" if fenced else "kept beside its replacement: both copies may hold writes, a person decides"))
        self.print_notifications()

    def print_notifications(self) -> None:
        """The operator's inbox: what an email subscriber of the stack receives."""
        sqs = self.session.client("sqs")
        got = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            if not batch:
                break
            for m in batch:
                got.append(json.loads(m["Body"]))
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=m["ReceiptHandle"])
        self.story.say(f"\n   The operator's inbox ({len(got)} new):")
        for n in sorted(got, key=lambda n: n.get("Timestamp", "")):
            self.notifications.append(n.get("Subject", ""))
            self.story.say(f"\n   Subject: {n.get('Subject')}")
            for line in n.get("Message", "").split("\n\n--- event (JSON)")[0].splitlines():
                self.story.say(f"   | {line}")

    def summarize(self) -> None:
        self.story.phase("Summary")
        story = self.incident_of(SERVER_A)
        detected = parse_time(story["detected_at"])
        by_name = {w["workload"]: w for w in story["workloads"]}
        rows = [("workload", "original", "replacement", "backup used (age at launch)", "detection→launch", "→serving")]
        for w in (w for w in self.fleet.workloads if w["server"] == SERVER_A):
            item = by_name[w["name"]]
            replacement = item.get("replacement_instance_id") or "-"
            launched = parse_time(item["launch_accepted_at"])
            serving = parse_time(item["serving_at"])
            backup = "-"
            if w["parameter"]:
                tags = tags_of(self.fleet.instance(replacement))
                taken = parse_time(tags[TAGS["backup_taken_at"]])
                backup = f"{tags[TAGS['restored_from']]} ({ago((launched - taken).total_seconds())})"
                if tags[TAGS["restored_from"]] != self.backups[w["name"]]:
                    raise DemoFailed(f"{w['name']} should be restored from {self.backups[w['name']]}: {tags}")
            row = {"workload": w["name"], "original": w["original"], "replacement": replacement, "backup": backup,
                   "to_launch": (launched - detected).total_seconds(), "to_serving": (serving - detected).total_seconds()}
            self.summary.append(row)
            rows.append((row["workload"], row["original"], replacement, backup,
                         f"{row['to_launch']:.2f} s", f"{row['to_serving']:.2f} s"))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            self.story.say("   " + "  ".join(c.ljust(w) for c, w in zip(r, widths)))

    # --- the whole run ---------------------------------------------------------------

    def run(self) -> None:
        self.story.say("Outposts HA demo: a store's Outposts server fails; its workloads come back on the standby. "
                       "Another store's link drops while its box runs on: its database is held, not copied.")
        self.story.phase("0. The scene: the real stack deployed into a local emulator")
        self.start_emulator()
        self.deploy()
        self.start_functions()
        self.create_fleet()
        self.backup_cycle()
        self.failover()
        self.recovery()
        self.unfence()
        self.home_and_fleet()
        self.partition()
        denials = self.logs / "iam-denials.log"
        if denials.exists():
            raise DemoFailed(f"IAM refused calls of the functions (each runs as its role):\n{denials.read_text()}")
        self.story.step("every function ran as its own role, IAM enforced: none of their calls was refused")
        self.summarize()

    def clean_up(self) -> None:
        self.story.phase("Cleaning up")
        try:
            if self.routing:
                self.routing.stop()
            if self.deployed:
                self.stackctl("delete", "--stack", STACK, "--purge-backups", "--yes")
                self.story.step(f"stack {STACK}, its server stacks, backups and artifacts deleted")
        finally:
            self.processes.stop()
            self.story.step("functions, the local Lambda runner and the emulator stopped")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--artifacts", required=True, type=pathlib.Path, help="folder with <function>/bootstrap.zip")
    p.add_argument("--keep-logs", type=pathlib.Path, help="copy the processes' logs here")
    a = p.parse_args(argv)
    missing = [f for f in stackctl.FUNCTIONS if not (a.artifacts / f / "bootstrap.zip").is_file()]
    if missing:
        print(f"demo failed: {a.artifacts} has no bootstrap.zip for {', '.join(missing)}: build them (make build)", file=sys.stderr)
        return 2
    # Ctrl-C and termination both end the story through the clean-up below.
    global stop_requests
    stop_requests = StopRequests()
    with tempfile.TemporaryDirectory(prefix="outposts-ha-demo-") as work:
        demo = Demo(a.artifacts, sys.stdout, pathlib.Path(work))
        code = 0
        try:
            demo.run()
        except DemoFailed as e:
            print(f"\ndemo failed: {e}", file=sys.stderr)
            code = 1
        except KeyboardInterrupt:
            print("\ndemo interrupted: cleaning up", file=sys.stderr)
            code = 130
        except Exception as e:  # noqa: BLE001 - an AWS call or the machine failed: say which, then clean up
            traceback.print_exc()
            print(f"\ndemo failed: {type(e).__name__}: {e}", file=sys.stderr)
            code = 1
        finally:
            exited = demo.processes.exited()
            try:
                demo.clean_up()
            except Exception as e:  # noqa: BLE001 - report, then still stop every process
                print(f"clean-up failed: {e}", file=sys.stderr)
                code = code or 1
            if exited:
                print(f"processes that stopped by themselves: {', '.join(exited)}", file=sys.stderr)
            denials = demo.logs / "iam-denials.log"
            if code and denials.exists():
                print(f"calls IAM refused (each function runs as its role):\n{denials.read_text()}", file=sys.stderr)
            if a.keep_logs:
                shutil.copytree(demo.logs, a.keep_logs, dirs_exist_ok=True)
                print(f"logs of every process: {a.keep_logs}", file=sys.stderr if code else sys.stdout)
        return code


if __name__ == "__main__":
    sys.exit(main())
