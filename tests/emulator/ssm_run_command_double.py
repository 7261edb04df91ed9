"""A test double for SSM Run Command's SendCommand where moto 5.2 falls short; loaded into the
moto server by `moto_with_doubles.py`. moto accepts any document name and any instance and
ends every command at once with empty output; SSM does not:

- SendCommand refuses a document that does not exist ("InvalidDocument: The specified SSM
  document doesn't exist in your AWS account") and an instance that is not a running managed
  node ("InvalidInstanceId: ... The instance isn't in a valid state ... or SSM Agent isn't
  running", SendCommand's errors). An instance tagged `run-command-double:offline=true` is
  such a node (its agent is not connected).
- The command starts `InProgress` and ends after a moment (`run-command-double:seconds` on
  the instance, default 0.2): GetCommandInvocation reports `InProgress` until then. Its end
  puts the documented "EC2 Command Status-change Notification" (source `aws.ssm`, detail
  command-id, document-name, expire-after, parameters, requested-date-time, status) on the
  default bus, naming the instance in `resources`.
- A command whose parameters carry `Targets` (the stack's witness probe) writes what the
  probe script would print: `control <address> <result>`, then `target <workload> <address>
  <result>` per pair. A target's host answers when a running instance carries the tag
  `run-command-double:address` = that host: with its `run-command-double:probe` tag
  (connected, refused; default connected); otherwise `no_reply`. The control address (the
  `Control` parameter, else the gateway 10.0.0.1) answers unless the witness is tagged
  `run-command-double:blind=true`.
- Parameters are checked against the document as SSM does: a parameter the document does
  not declare, a required one missing, or a value that does not match its `allowedPattern`
  is refused ("InvalidParameters: The parameters specified for the document are invalid").
- `AWS::SSM::Document` in a CloudFormation template whose `Content` is an object (the
  property's type is Json: YAML templates give it as a mapping) is stored as text in its
  `DocumentFormat`, as SSM holds every document; moto keeps the mapping and then fails to
  describe or hash it.
- `run-command-double:outcome` on the instance (Failed, TimedOut, Cancelled) ends the
  command that way, with no output.
"""

import datetime
import json
import re
import threading

import yaml

from moto.ec2.models import ec2_backends
from moto.events.models import events_backends
from moto.ssm.exceptions import InvalidDocument
from moto.ssm.models import Document, SimpleSystemManagerBackend
from moto.core.exceptions import JsonRESTError

_lock = threading.Lock()
_original_send_command = SimpleSystemManagerBackend.send_command
DEFAULT_GATEWAY = "10.0.0.1"


class InvalidInstanceId(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("InvalidInstanceId", message)


class InvalidParameters(JsonRESTError):
    def __init__(self, message: str):
        super().__init__("InvalidParameters", message)


def _parameter_refusal(document, parameters: dict) -> str | None:
    """Why SSM refuses these parameters for the document, or None."""
    declared = (yaml.safe_load(document.content) or {}).get("parameters") or {}
    for name in parameters:
        if name not in declared:
            return f"the document declares no parameter {name}"
    for name, spec in declared.items():
        values = parameters.get(name)
        if values is None:
            if "default" not in spec:
                return f"the required parameter {name} is missing"
            continue
        pattern = spec.get("allowedPattern")
        for value in values:
            if pattern and not re.match(pattern, value):
                return f"{name} value '{value}' does not match its allowedPattern {pattern}"
    return None


def _tags(instance) -> dict:
    return {t["key"]: t["value"] for t in instance.get_tags()}


def _running(ec2):
    for reservation in ec2.all_reservations():
        for instance in reservation.instances:
            if instance.state == "running":
                yield instance


def _answer(ec2, host: str) -> str:
    for instance in _running(ec2):
        tags = _tags(instance)
        if tags.get("run-command-double:address") == host:
            return tags.get("run-command-double:probe", "connected")
    return "no_reply"


def _probe_output(ec2, parameters: dict, witness_tags: dict) -> str:
    control = ((parameters.get("Control") or [""])[0]) or DEFAULT_GATEWAY
    blind = witness_tags.get("run-command-double:blind") == "true"
    lines = [f"control {control} {'no_reply' if blind else 'connected'}"]
    for pair in ((parameters.get("Targets") or [""])[0]).split():
        workload, _, target = pair.partition("=")
        lines.append(f"target {workload} {target} {_answer(ec2, target.split(':')[0])}")
    return "\n".join(lines) + "\n"


def _finish(backend, command, instance_id: str, outcome: str, output: str) -> None:
    with _lock:
        command.status = outcome
        command.status_details = outcome
        for invocation in command.invocations:
            invocation["Status"] = outcome
            invocation["StatusDetails"] = outcome
            invocation["StandardOutputContent"] = output if outcome == "Success" else ""
            invocation["ResponseCode"] = 0 if outcome == "Success" else 1
    stamp = lambda t: t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"  # noqa: E731
    account, region = backend.account_id, backend.region_name
    events_backends[account][region].put_events([{
        "Source": "aws.ssm",
        "DetailType": "EC2 Command Status-change Notification",
        "Resources": [f"arn:aws:ec2:{region}:{account}:instance/{instance_id}"],
        "Detail": json.dumps({
            "command-id": command.command_id,
            "document-name": command.document_name,
            "expire-after": stamp(command.expires_after),
            "parameters": command.parameters,
            "requested-date-time": stamp(command.requested_date_time),
            "status": outcome,
        }),
        "EventBusName": "default",
    }])


def send_command(self: SimpleSystemManagerBackend, **kwargs):
    document_name = kwargs.get("document_name")
    documents = self._documents.get(document_name)
    if not documents:
        raise InvalidDocument("The specified SSM document doesn't exist in your AWS account")
    refusal = _parameter_refusal(documents.get_default_version(), kwargs.get("parameters") or {})
    if refusal:
        raise InvalidParameters(f"The parameters specified for the document are invalid: {refusal}")
    ec2 = ec2_backends[self.account_id][self.region_name]
    instance_ids = kwargs.get("instance_ids") or []
    steering = {}
    for instance_id in instance_ids:
        try:
            instance = ec2.get_instance(instance_id)
        except Exception:  # noqa: BLE001 - moto raises its own not-found error
            instance = None
        tags = _tags(instance) if instance is not None else {}
        if instance is None or instance.state != "running" or tags.get("run-command-double:offline") == "true":
            raise InvalidInstanceId(f"Instances [[{instance_id}]] not in a valid state for account {self.account_id}")
        steering[instance_id] = tags
    command = _original_send_command(self, **kwargs)
    with _lock:
        command.status = "InProgress"
        for invocation in command.invocations:
            invocation["Status"] = "InProgress"
            invocation["StatusDetails"] = "InProgress"
    for instance_id, tags in steering.items():
        outcome = tags.get("run-command-double:outcome", "Success")
        parameters = kwargs.get("parameters") or {}
        output = _probe_output(ec2, parameters, tags) if "Targets" in parameters else ""
        seconds = float(tags.get("run-command-double:seconds", "0.2"))
        threading.Timer(seconds, _finish, args=(self, command, instance_id, outcome, output)).start()
    return command


_original_document_from_cloudformation = Document.create_from_cloudformation_json.__func__


def document_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
    properties = cloudformation_json["Properties"]
    content = properties.get("Content")
    if isinstance(content, dict):
        as_json = (properties.get("DocumentFormat") or "JSON").upper() == "JSON"
        properties["Content"] = json.dumps(content) if as_json else yaml.safe_dump(content, sort_keys=False)
    return _original_document_from_cloudformation(cls, resource_name, cloudformation_json, account_id, region_name,
                                                  **kwargs)


def install() -> None:
    SimpleSystemManagerBackend.send_command = send_command
    Document.create_from_cloudformation_json = classmethod(document_from_cloudformation)
