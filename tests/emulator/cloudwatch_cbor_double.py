"""CloudWatch over Smithy RPC v2 CBOR, loaded into the moto server. The AWS SDK for Rust
speaks only that protocol to CloudWatch (`POST /service/GraniteServiceVersion20100801/
operation/<Operation>`, CBOR bodies, `smithy-protocol: rpc-v2-cbor`); moto 5.2 serves
CloudWatch's query and JSON protocols only, so DescribeAlarms and GetMetricData from the
functions never reached it. Each CBOR request is decoded, handed to moto as the same
operation in the JSON protocol (same headers, so IAM evaluates the same caller), and the
answer encoded back by the operation's output shape (timestamps as CBOR tag 1).
"""

from __future__ import annotations

import base64
import datetime
import json
from typing import Any

from botocore.model import ShapeResolver
from botocore.parsers import RpcV2CBORParser
from botocore.serialize import RpcV2CBORSerializer
from moto.cloudwatch import urls as cloudwatch_urls
from moto.cloudwatch.responses import CloudWatchResponse
from moto.core.utils import get_service_model
from werkzeug.test import EnvironBuilder

TARGET_PREFIX = "GraniteServiceVersion20100801"
ROUTE = r"{0}/service/" + TARGET_PREFIX + r"/operation/(?P<operation>[A-Za-z]+)$"
CBOR_HEADERS = {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor"}


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime.datetime):
        return value.timestamp()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()  # the JSON protocol's blob form
    raise TypeError(f"no JSON form for {type(value).__name__}")


# An error body: a map of strings (its shape in "__type", its message), encoded by botocore.
_ERROR_FIELDS = ShapeResolver({
    "ErrorFields": {"type": "map", "key": {"shape": "Text"}, "value": {"shape": "Text"}},
    "Text": {"type": "string"},
}).get_shape_by_name("ErrorFields")


def _error_body(error: dict[str, Any]) -> bytes:
    fields = {"__type": str(error.get("__type") or error.get("code") or "InternalFailure"),
              "message": str(error.get("message") or error.get("Message") or "")}
    body = bytearray()
    RpcV2CBORSerializer()._serialize_data_item(body, fields, _ERROR_FIELDS)
    return bytes(body)


def cbor_bridge(request: Any, full_url: str, headers: Any) -> tuple[int, dict, bytes]:
    operation = full_url.rstrip("/").rsplit("/", 1)[-1]
    model = get_service_model("cloudwatch").operation_model(operation)
    body = request.get_data() if hasattr(request, "get_data") else request.data
    parameters = RpcV2CBORParser()._initial_body_parse(body) or {}
    forwarded = {k: v for k, v in dict(headers).items() if k.lower() not in ("content-type", "content-length",
                                                                               "smithy-protocol", "accept")}
    forwarded.update({"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"{TARGET_PREFIX}.{operation}"})
    root = full_url.split("/service/")[0]
    as_json = EnvironBuilder(base_url=root, path="/", method="POST", headers=forwarded,
                             data=json.dumps(parameters, default=_json_default)).get_request()
    status, answer_headers, answer = CloudWatchResponse.dispatch(as_json, root + "/", as_json.headers)
    # The request id, and the query error code a query-compatible service's SDK reads.
    kept = {k: v for k, v in dict(answer_headers or {}).items()
            if k.lower() in ("x-amzn-requestid", "x-amzn-query-error")}
    text = answer.decode() if isinstance(answer, bytes) else (answer or "")
    try:
        payload = json.loads(text) if text.strip() else {}
    except json.JSONDecodeError:
        return 500, CBOR_HEADERS, _error_body({"__type": "InternalFailure", "message": text[:500]})
    if int(status) >= 400:
        return int(status), {**CBOR_HEADERS, **kept}, _error_body(payload)
    encoded = bytearray()
    if model.output_shape is not None:
        RpcV2CBORSerializer()._serialize_data_item(encoded, payload, model.output_shape)
    return int(status), {**CBOR_HEADERS, **kept}, bytes(encoded)


def install() -> None:
    cloudwatch_urls.url_paths[ROUTE] = cbor_bridge
