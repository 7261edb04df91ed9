"""Test doubles for the AWS events moto 5.2 never produces, loaded into the moto server.

- `AWS::CloudWatch::Alarm` in a CloudFormation template becomes a real moto alarm (moto
  skips the type), so `protected-server.yaml` deploys the server's alarm as on AWS.
- SetAlarmState that changes an alarm's state puts the documented "CloudWatch Alarm State
  Change" event on the default bus, as CloudWatch does. moto's alarms never evaluate
  metrics, so SetAlarmState is how a test or the demo makes a server's alarm fire.
- With `EMULATOR_EC2_STATE_EVENTS=1`: every instance RunInstances starts puts the
  documented "EC2 Instance State-change Notification" (state `running`) on the default
  bus shortly after. Opt-in, because the integration tests deliver those events themselves.
- PutEvents refuses a request whose entries total 256 KB or more, as EventBridge does
  (moto checks only the count of entries).
- A list item that resolves to `AWS::NoValue` (`!If [cond, item, !Ref AWS::NoValue]`) is
  dropped from its list, as CloudFormation does ("AWS::NoValue: Removes the corresponding
  resource property when specified as a return value in the Fn::If intrinsic function");
  moto keeps it as a null, which no policy statement, tag or resource list may hold.
- Lambda GetAccountSettings (moto has no route for it): the account's concurrency quota
  (`MOTO_LAMBDA_CONCURRENCY_QUOTA`, default 1,000) and what the functions leave unreserved.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import threading
from typing import Any

from moto.cloudformation import parsing
from moto.cloudformation.parsing import get_model_list, get_model_map
from moto.cloudwatch.models import CloudWatchBackend, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.ec2.models.instances import InstanceBackend
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, events_backends
from moto.awslambda import urls as lambda_urls
from moto.awslambda.models import lambda_backends

import iam_policy_double

RUNNING_DELAY_SECONDS = 0.3


def _put_default_bus(account: str, region: str, source: str, detail_type: str, resources: list[str], detail: dict) -> None:
    events_backends[account][region].put_events([{
        "Source": source,
        "DetailType": detail_type,
        "Detail": json.dumps(detail),
        "Resources": resources,
        "EventBusName": "default",
    }])


def _alarm_time(at: datetime.datetime) -> str:
    """CloudWatch's timestamp format in alarm events: 2026-11-22T10:00:00.123+0000."""
    return at.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


class CloudFormationAlarm(CloudFormationModel):
    """AWS::CloudWatch::Alarm (single-metric form, the one protected-server.yaml uses)."""

    # moto files every model under the service named by its module.
    __module__ = "moto.cloudwatch.models"

    def __init__(self, name: str, arn: str):
        self.name = name
        self.arn = arn

    @property
    def physical_resource_id(self) -> str:
        return self.name

    @staticmethod
    def cloudformation_name_type() -> str:
        return "AlarmName"

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    def get_cfn_attribute(self, attribute_name: str) -> str:
        return self.arn

    @classmethod
    def create_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str, **kwargs: Any) -> "CloudFormationAlarm":
        p = cloudformation_json["Properties"]
        name = p.get("AlarmName") or resource_name
        alarm = cloudwatch_backends[account_id][region_name].put_metric_alarm(
            name=name,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=int(p.get("Period", 60)),
            threshold=float(p["Threshold"]),
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription", ""),
            dimensions=[{"Name": d["Name"], "Value": d["Value"]} for d in p.get("Dimensions", [])],
            alarm_actions=p.get("AlarmActions", []),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            actions_enabled=str(p.get("ActionsEnabled", True)).lower() == "true",
            treat_missing_data=p.get("TreatMissingData"),
            tags=[{"Key": t["Key"], "Value": t["Value"]} for t in p.get("Tags", [])],
        )
        return cls(name, alarm.alarm_arn)

    @classmethod
    def delete_from_cloudformation_json(cls, resource_name: str, cloudformation_json: Any, account_id: str,
                                        region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([resource_name])

    def delete(self, account_id: str, region_name: str) -> None:
        cloudwatch_backends[account_id][region_name].delete_alarms([self.name])


def _state(value: str, reason: str, reason_data: str | None, at: datetime.datetime) -> dict:
    state = {"value": value, "reason": reason, "timestamp": _alarm_time(at)}
    if reason_data:
        state["reasonData"] = reason_data
    return state


_original_set_alarm_state = CloudWatchBackend.set_alarm_state


def set_alarm_state(self: CloudWatchBackend, alarm_name: str, reason: str, reason_data: str, state_value: str) -> None:
    alarm = self.alarms.get(alarm_name)
    before = (alarm.state_value, alarm.state_reason, alarm.state_reason_data, alarm.state_updated_timestamp) if alarm else None
    _original_set_alarm_state(self, alarm_name, reason, reason_data, state_value)
    if before is None or before[0] == state_value:
        return
    dimensions = {d.name: d.value for d in alarm.dimensions}
    detail = {
        "alarmName": alarm.name,
        "state": _state(state_value, reason, reason_data, alarm.state_updated_timestamp),
        "previousState": _state(before[0], before[1], before[2], before[3]),
        "configuration": {
            "description": alarm.description or "",
            "metrics": [{
                "id": "m1",
                "metricStat": {
                    "metric": {"namespace": alarm.namespace, "name": alarm.metric_name, "dimensions": dimensions},
                    "period": alarm.period,
                    "stat": alarm.statistic,
                },
                "returnData": True,
            }],
        },
    }
    _put_default_bus(self.account_id, self.region_name, "aws.cloudwatch", "CloudWatch Alarm State Change",
                     [alarm.alarm_arn], detail)


_original_run_instances = InstanceBackend.run_instances


def run_instances(self: InstanceBackend, *args: Any, **kwargs: Any):
    reservation = _original_run_instances(self, *args, **kwargs)
    ids = [i.id for i in reservation.instances]

    def running() -> None:
        for instance_id in ids:
            arn = f"arn:aws:ec2:{self.region_name}:{self.account_id}:instance/{instance_id}"
            _put_default_bus(self.account_id, self.region_name, "aws.ec2", "EC2 Instance State-change Notification",
                             [arn], {"instance-id": instance_id, "state": "running"})

    threading.Timer(RUNNING_DELAY_SECONDS, running).start()
    return reservation


_original_put_events = EventsBackend.put_events

# "The total entry size must be less than 256KB ... If specified, the Time parameter is 14
# bytes. The Source and DetailType parameters are the number of bytes for their UTF-8
# encoded forms. If specified, the Detail parameter is the number of bytes for its UTF-8
# encoded form. If specified, each entry of the Resources parameter is the number of bytes
# for its UTF-8 encoded forms." (EventBridge User Guide, calculating PutEvents entry size)
PUT_EVENTS_LIMIT = 256 * 1024


def entry_size(entry: dict[str, Any]) -> int:
    size = 14 if entry.get("Time") is not None else 0
    for key in ("Source", "DetailType", "Detail"):
        size += len((entry.get(key) or "").encode("utf-8"))
    return size + sum(len(r.encode("utf-8")) for r in entry.get("Resources") or [])


def put_events(self: EventsBackend, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if sum(entry_size(e) for e in events) >= PUT_EVENTS_LIMIT:
        raise ValidationException("Total size of the entries in the request is over the limit.")
    return _original_put_events(self, events)


def get_account_settings(request: Any, full_url: str, headers: Any) -> tuple[int, dict, str]:
    # GetAccountSettings: "AccountLimit ... ConcurrentExecutions: The maximum number of
    # simultaneous function executions. UnreservedConcurrentExecutions: The maximum number of
    # simultaneous function executions, minus the capacity that's reserved for individual
    # functions with PutFunctionConcurrency."
    authorization = request.headers.get("Authorization", "")
    scope = re.search(r"Credential=[^/]+/\d+/([^/]+)/", authorization)
    region = scope.group(1) if scope else "us-east-1"
    why = iam_policy_double.refusal("123456789012", request.headers, "lambda:GetAccountSettings",
                                    lambda: [iam_policy_double.Authorization("lambda:GetAccountSettings", "*")])
    if why is not None:
        return 403, {"Content-Type": "application/json", "x-amzn-ErrorType": "AccessDeniedException"}, json.dumps(
            {"Message": why})
    quota = int(os.environ.get("MOTO_LAMBDA_CONCURRENCY_QUOTA", "1000"))
    functions = lambda_backends["123456789012"][region].list_functions()
    reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
    body = {"AccountLimit": {"TotalCodeSize": 80530636800, "CodeSizeUnzipped": 262144000, "CodeSizeZipped": 52428800,
                             "ConcurrentExecutions": quota, "UnreservedConcurrentExecutions": quota - reserved},
            "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(functions)}}
    return 200, {"Content-Type": "application/json"}, json.dumps(body)


_original_clean_json = parsing.clean_json


def clean_json(resource_json: Any, resources_map: Any) -> Any:
    if isinstance(resource_json, list):
        resolved = [clean_json(item, resources_map) for item in resource_json]
        return [v for v, item in zip(resolved, resource_json) if not (v is None and _may_be_no_value(item))]
    return _original_clean_json(resource_json, resources_map)


def _may_be_no_value(item: Any) -> bool:
    """An item written as `!Ref AWS::NoValue` or an `Fn::If` (whose branch may be one)."""
    return isinstance(item, dict) and (item.get("Ref") == "AWS::NoValue" or "Fn::If" in item)


class _NoConditions:
    """The least of a ResourceMap the self-check below needs: every condition false."""

    lazy_condition_map: dict[str, bool] = {"c": False}

    def __getitem__(self, key: str) -> None:
        assert key == "AWS::NoValue", key


def install() -> None:
    # moto caches its model list on first use; this runs before the server takes requests.
    get_model_list.cache_clear()
    get_model_map.cache_clear()
    assert "AWS::CloudWatch::Alarm" in get_model_map()
    # The parser recurses through the module's name: every nested list is cleaned this way.
    parsing.clean_json = clean_json
    assert parsing.clean_json([{"Fn::If": ["c", 1, {"Ref": "AWS::NoValue"}]}, {"Ref": "AWS::NoValue"}, 2],
                              _NoConditions()) == [2]
    CloudWatchBackend.set_alarm_state = set_alarm_state
    lambda_urls.url_paths[r"{0}/(?P<api_version>[^/]+)/account-settings/?$"] = get_account_settings
    EventsBackend.put_events = put_events
    if os.environ.get("EMULATOR_EC2_STATE_EVENTS") == "1":
        InstanceBackend.run_instances = run_instances

