"""A test double for SSM Automation, which moto 5.2 does not implement; loaded into the
moto server by `moto_with_doubles.py`. It adds three SSM actions with the request
and response shapes of the SSM API reference:

- StartAutomationExecution: DocumentName, Parameters, ClientToken (the same token with
  the same request returns the same execution; with a different one,
  IdempotentParameterMismatch), Tags. The execution is `InProgress`.
- GetAutomationExecution: AutomationExecution with Parameters, Outputs, StepExecutions,
  FailureMessage, ExecutionStartTime/EndTime; AutomationExecutionNotFoundException.
- DescribeAutomationExecutions: Filters DocumentNamePrefix and ExecutionStatus.

After a delay the double plays the backup runbook's effect and ends the execution:
`Success` creates a real AMI (with its snapshot) from the instance in moto's EC2 and names
it in the output `createAMIFromSnapshot.ImageId`. It then puts the documented
"EC2 Automation Execution Status-change Notification" on the default event bus, where
the rules the test harness mirrors pick it up.

Tests steer one instance's next executions with tags on the instance (the runbook never
reads them; they exist only for this double):
- `automation-double:outcome`: Success (default), Failed, Cancelled, TimedOut,
  NoOutput (success without the output), UnavailableImage (an AMI that is not available);
- `automation-double:seconds`: how long an execution runs (default 0.2).

The backup runbook's helper is checked as the runbook's own steps would: an execution whose
`SubnetId` is an Outpost's subnet or outside the instance's VPC, or whose
`TemporaryInstancesType` has another CPU architecture than the instance, fails at
`stageCreateHelperInstanceAutomation`.
"""

import datetime
import json
import re
import threading
import uuid

from moto.core.exceptions import JsonRESTError
from moto.core.responses import ActionResult
from moto.ec2.models import ec2_backends
from moto.events.models import events_backends
from moto.ssm.responses import SimpleSystemManagerResponse

IMAGE_OUTPUT = "createAMIFromSnapshot.ImageId"
_lock = threading.Lock()
_executions = {}  # (account, region) -> {execution id -> dict}
_tokens = {}  # (account, region, token) -> (execution id, request)


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _store(account, region):
    return _executions.setdefault((account, region), {})


def _instance_tags(account, region, instance_id):
    try:
        instance = ec2_backends[account][region].get_instance(instance_id)
    except Exception:  # noqa: BLE001 - an unknown instance simply has no steering tags
        return None, {}
    return instance, {t["key"]: t["value"] for t in instance.get_tags()}


def _helper_refusal(ec2, instance, parameters):
    """Why the runbook's helper instance cannot be created, or None."""
    subnet_id = (parameters.get("SubnetId") or [""])[0]
    if subnet_id:
        subnet = next((zone[subnet_id] for zone in ec2.subnets.values() if subnet_id in zone), None)
        # SubnetId: "The subnet ID in Region to create the helper instance ... a subnet whose
        # private CIDR is reachable from the Outposts Server instance (e.g. a Subnet in
        # region in the same VPC of the Outposts Server)."
        if subnet is None:
            return f"The subnet ID '{subnet_id}' does not exist"
        if getattr(subnet, "outpost_arn", None):
            return f"SubnetId {subnet_id} is an Outpost's subnet: the helper instance runs in a subnet in the Region"
        if subnet.vpc_id != instance.vpc_id:
            return f"SubnetId {subnet_id} is in {subnet.vpc_id}, not in the instance's VPC {instance.vpc_id}"
    helper_type = (parameters.get("TemporaryInstancesType") or [""])[0]
    if helper_type:
        # TemporaryInstancesType: "The CPU arch of the selected instance type must be the
        # same of the instance to backup (e.g. specify Graviton instance type if your
        # Outposts Server instance is running on 1U server)."
        arm = re.match(r"^[a-z]+\d+[a-z]*g", helper_type.split(".")[0]) is not None
        wanted = getattr(instance, "architecture", "x86_64") or "x86_64"
        if ("arm64" if arm else "x86_64") != wanted:
            return f"TemporaryInstancesType {helper_type} is not {wanted}, the architecture of {instance.id}"
    return None


def _finish(account, region, execution_id):
    with _lock:
        execution = _store(account, region)[execution_id]
        instance_id = (execution["Parameters"].get("InstanceId") or [""])[0]
        instance, tags = _instance_tags(account, region, instance_id)
        outcome = tags.get("automation-double:outcome", "Success")
        ec2 = ec2_backends[account][region]
        steps = [{"StepName": "createSnapshots", "Action": "aws:executeScript", "StepStatus": "Success"},
                 {"StepName": "createAMIFromSnapshot", "Action": "aws:executeAwsApi", "StepStatus": "Success"}]
        refusal = instance is not None and _helper_refusal(ec2, instance, execution["Parameters"])
        if refusal:
            status = "Failed"
            steps = [{"StepName": "stageCreateHelperInstanceAutomation", "Action": "aws:createStack",
                      "StepStatus": "Failed", "FailureMessage": refusal}]
            execution["FailureMessage"] = "Step fails when it is executing."
        elif outcome in ("Success", "NoOutput", "UnavailableImage"):
            if instance is None:
                status, steps[0]["StepStatus"] = "Failed", "Failed"
                steps[0]["FailureMessage"] = f"The instance ID '{instance_id}' does not exist"
                execution["FailureMessage"] = "Step fails when it is executing."
            else:
                status = "Success"
                if outcome != "NoOutput":
                    image = ec2.create_image(instance_id, f"backup-{instance_id}-{execution_id}",
                                             f"Backup of {instance_id} by {execution['DocumentName']}", [])
                    if outcome == "UnavailableImage":
                        image.state = "failed"
                    execution["Outputs"] = {IMAGE_OUTPUT: [image.id]}
        else:
            status = outcome
            steps[0]["StepStatus"] = outcome
            steps[0]["FailureMessage"] = f"createSnapshots ended {outcome} (automation-double)"
            steps[1]["StepStatus"] = "Pending"
            execution["FailureMessage"] = f"Step {steps[0]['StepName']} ended {outcome}."
        execution["StepExecutions"] = steps
        execution["AutomationExecutionStatus"] = status
        execution["ExecutionEndTime"] = _now()
        event = {
            "ExecutionId": execution_id,
            "Definition": execution["DocumentName"],
            "DefinitionVersion": 1.0,
            "Status": status,
            "StartTime": execution["ExecutionStartTime"].strftime("%b %d, %Y %-I:%M:%S %p"),
            "EndTime": execution["ExecutionEndTime"].strftime("%b %d, %Y %-I:%M:%S %p"),
            "Time": (execution["ExecutionEndTime"] - execution["ExecutionStartTime"]).total_seconds() * 1000,
            "ExecutedBy": execution["ExecutedBy"],
        }
    arn = f"arn:aws:ssm:{region}:{account}:automation-execution/{execution_id}"
    events_backends[account][region].put_events([{
        "Source": "aws.ssm",
        "DetailType": "EC2 Automation Execution Status-change Notification",
        "Detail": json.dumps(event),
        "Resources": [arn],
        "EventBusName": "default",
    }])


def start_automation_execution(self):
    document = self._get_param("DocumentName")
    if not document:
        raise JsonRESTError("ValidationException", "DocumentName is required")
    parameters = self._get_param("Parameters") or {}
    token = self._get_param("ClientToken")
    account, region = self.current_account, self.region
    request = json.dumps([document, parameters], sort_keys=True)
    with _lock:
        if token:
            try:
                uuid.UUID(token)
            except ValueError as e:
                raise JsonRESTError("ValidationException", f"ClientToken {token} is not a UUID") from e
            known = _tokens.get((account, region, token.lower()))
            if known:
                if known[1] != request:
                    raise JsonRESTError("IdempotentParameterMismatch", "the token was used with other parameters")
                return ActionResult({"AutomationExecutionId": known[0]})
        execution_id = str(uuid.uuid4())
        _store(account, region)[execution_id] = {
            "AutomationExecutionId": execution_id,
            "DocumentName": document,
            "DocumentVersion": "1",
            "AutomationExecutionStatus": "InProgress",
            "ExecutionStartTime": _now(),
            "Parameters": parameters,
            "Outputs": {},
            "Mode": "Auto",
            "ExecutedBy": f"arn:aws:sts::{account}:assumed-role/backup-scheduler/test",
            "Tags": self._get_param("Tags") or [],
        }
        if token:
            _tokens[(account, region, token.lower())] = (execution_id, request)
    instance_id = (parameters.get("InstanceId") or [""])[0]
    _, tags = _instance_tags(account, region, instance_id)
    seconds = float(tags.get("automation-double:seconds", "0.2"))
    threading.Timer(seconds, _finish, (account, region, execution_id)).start()
    return ActionResult({"AutomationExecutionId": execution_id})


def _public(execution):
    return {k: v for k, v in execution.items() if k != "Tags"}


def get_automation_execution(self):
    execution_id = self._get_param("AutomationExecutionId")
    with _lock:
        execution = _store(self.current_account, self.region).get(execution_id)
        if execution is None:
            raise JsonRESTError("AutomationExecutionNotFoundException", f"Execution {execution_id} not found")
        return ActionResult({"AutomationExecution": _public(execution)})


def describe_automation_executions(self):
    filters = {f["Key"]: f["Values"] for f in self._get_param("Filters") or []}
    prefixes = filters.get("DocumentNamePrefix")
    statuses = filters.get("ExecutionStatus")
    with _lock:
        found = [
            {k: e[k] for k in ("AutomationExecutionId", "DocumentName", "DocumentVersion", "AutomationExecutionStatus",
                               "ExecutionStartTime", "ExecutedBy", "Outputs", "Mode") if k in e}
            for e in _store(self.current_account, self.region).values()
            if (not prefixes or any(e["DocumentName"].startswith(p) for p in prefixes))
            and (not statuses or e["AutomationExecutionStatus"] in statuses)
        ]
    return ActionResult({"AutomationExecutionMetadataList": found})


SimpleSystemManagerResponse.start_automation_execution = start_automation_execution
SimpleSystemManagerResponse.get_automation_execution = get_automation_execution
SimpleSystemManagerResponse.describe_automation_executions = describe_automation_executions
