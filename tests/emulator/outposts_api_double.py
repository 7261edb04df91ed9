"""The AWS Outposts API's ListOutposts, loaded into the moto server (moto 5.2 has no Outposts
service: a request signed for `outposts` found no backend).

- `GET /outposts` answers ListOutposts: "Lists the Outposts for your AWS account", paged by
  `MaxResults` ("Valid Range: Minimum value of 1. Maximum value of 1000") and `NextToken`,
  filtered by `LifeCycleStatusFilter`; IAM evaluates `outposts:ListOutposts` (no resource
  type: `*`) through `iam_policy_double.refusal`.
- The account's Outposts are those a test seeds (`POST /_outposts_double/outposts` with
  `{"outposts": [{"OutpostId": ..., "LifeCycleStatus": ...}]}`) and every Outpost a subnet
  was created on (`outposts_network_double.py` keeps CreateSubnet's `OutpostArn`): a subnet
  on an Outpost means the Outpost exists.
"""

from __future__ import annotations

import json
import re
import threading
from typing import Any
from urllib.parse import parse_qs

import iam_policy_double
from moto.ec2.models import ec2_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

ACCOUNT = "123456789012"
SEED_PATH = "/_outposts_double/outposts"
_seeded: dict[str, dict[str, Any]] = {}
_lock = threading.Lock()
_original_get_application = DomainDispatcherApplication.get_application


def _service(environ: dict[str, Any]) -> str | None:
    scope = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return scope.group(1) if scope else None


def _region(environ: dict[str, Any]) -> str:
    scope = re.search(r"Credential=[^/]+/[^/]+/([^/]+)/", environ.get("HTTP_AUTHORIZATION", ""))
    return scope.group(1) if scope else "us-east-1"


def _outpost(outpost_id: str, region: str, status: str = "ACTIVE") -> dict[str, Any]:
    return {
        "OutpostId": outpost_id,
        "OwnerId": ACCOUNT,
        "OutpostArn": f"arn:aws:outposts:{region}:{ACCOUNT}:outpost/{outpost_id}",
        "SiteId": "os-0123456789abcdef0",
        "Name": outpost_id,
        "LifeCycleStatus": status,
        "AvailabilityZone": f"{region}a",
        "SupportedHardwareType": "SERVER",
    }


def _outposts(region: str) -> list[dict[str, Any]]:
    found = {o["OutpostId"]: o for o in _seeded.values() if o["OutpostArn"].split(":")[3] == region}
    backend = ec2_backends[ACCOUNT][region]
    for subnets in backend.subnets.values():
        for subnet in subnets.values():
            arn = getattr(subnet, "outpost_arn", None)
            if arn and arn.split(":")[3] == region:
                outpost_id = arn.rsplit("/", 1)[-1]
                found.setdefault(outpost_id, _outpost(outpost_id, region))
    return [found[k] for k in sorted(found)]


def _answer(start_response, status: int, body: dict[str, Any], error: str | None = None):
    headers = [("Content-Type", "application/json")]
    if error:
        headers.append(("x-amzn-ErrorType", error))
    start_response(f"{status} {'OK' if status == 200 else 'Error'}", headers)
    return [json.dumps(body).encode()]


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    return {k[5:].replace("_", "-").title(): v for k, v in environ.items() if k.startswith("HTTP_")}


def outposts_app(environ: dict[str, Any], start_response):
    method, path = environ.get("REQUEST_METHOD"), environ.get("PATH_INFO", "")
    if path == SEED_PATH and method == "POST":
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)) or b"{}")
        region = body.get("region", "us-east-1")
        with _lock:
            for o in body.get("outposts", []):
                _seeded[o["OutpostId"]] = _outpost(o["OutpostId"], region, o.get("LifeCycleStatus", "ACTIVE"))
        return _answer(start_response, 200, {"seeded": len(body.get("outposts", []))})
    if path.rstrip("/") != "/outposts" or method != "GET":
        return _answer(start_response, 404, {"message": f"the Outposts double serves ListOutposts only, not {method} {path}"},
                       "UnknownOperationException")
    why = iam_policy_double.refusal(ACCOUNT, _headers(environ), "outposts:ListOutposts",
                                    lambda: [iam_policy_double.Authorization("outposts:ListOutposts", "*")])
    if why is not None:
        return _answer(start_response, 403, {"message": why}, "AccessDeniedException")
    query = parse_qs(environ.get("QUERY_STRING", ""))
    size = int(query.get("MaxResults", ["1000"])[0])
    if not 1 <= size <= 1000:
        return _answer(start_response, 400, {"message": f"MaxResults {size} is outside 1 to 1000"}, "ValidationException")
    statuses = set(query.get("LifeCycleStatusFilter", []))
    with _lock:
        listed = [o for o in _outposts(_region(environ)) if not statuses or o["LifeCycleStatus"] in statuses]
    start = int(query.get("NextToken", ["0"])[0])
    page = listed[start : start + size]
    body: dict[str, Any] = {"Outposts": page}
    if start + size < len(listed):
        body["NextToken"] = str(start + size)
    return _answer(start_response, 200, body)


def get_application(self: DomainDispatcherApplication, environ: dict[str, Any]):
    if _service(environ) == "outposts" or environ.get("PATH_INFO", "") == SEED_PATH:
        return outposts_app
    return _original_get_application(self, environ)


def install() -> None:
    DomainDispatcherApplication.get_application = get_application
