"""Lambda handler of the intake: Salesforce notifications in, SyncRequests on the work queues.

- POST /salesforce/outbound  Outbound Message (SOAP) -> SOAP Ack, or a SOAP fault
- POST /salesforce/events    signed Platform Event callout (JSON) -> 202, or {"error": ...}
- EventBridge events         Event Relay (platform events, Change Data Capture); raising makes
                             EventBridge/Lambda retry and, in the end, park the event in the DLQ

The logic lives in `sfintacct.intake`; this module adapts events and shapes responses.

Every log line of an HTTP request, accepted or refused, carries the source IP, the user agent and
API Gateway's request id, and what became known while the message was checked: how the sender proved
itself (`auth`), an Outbound Message's ActionId, the client certificate API Gateway verified. A refusal
names its reason. Bodies, the Outbound Message SessionId, tokens and signatures are never logged.
"""

from __future__ import annotations

import json
import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sfintacct.intake.client_certificate import client_certificate_from_identity
from sfintacct.intake.errors import IntakeError, MalformedRequest
from sfintacct.intake.event_relay import is_eventbridge_event
from sfintacct.intake.platform_event import SIGNATURE_HEADER, SIGNATURE_TIMESTAMP_HEADER
from sfintacct.intake.runtime import intake_service
from sfintacct.intake.sender_checks import OUTBOUND_TOKEN_PARAMETER
from sfintacct.intake.soap import ACK_RESPONSE, SOAP_CONTENT_TYPE, soap_fault

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SfIntacct"))
# debug=False whatever POWERTOOLS_DEV says: in debug mode the resolver prints whole events, the
# `token` query parameter included.
app = APIGatewayRestResolver(debug=False)
MAX_LOGGED_USER_AGENT = 200


@app.post("/salesforce/outbound")
def outbound_message() -> Response[str]:
    """Enqueue every notification of the message, then acknowledge; otherwise answer a SOAP fault."""
    event = app.current_event
    certificate = client_certificate_from_identity(event.request_context.get("identity"))
    if certificate is not None:
        logger.append_keys(**certificate.log_keys())
    try:
        body = _request_body()
        accepted = intake_service().accept_outbound_message(
            body,
            event.headers.get("content-type"),
            event.get_query_string_value(OUTBOUND_TOKEN_PARAMETER),
            certificate,
            note=logger.append_keys,
        )
    except IntakeError as error:
        _log_refusal("outbound message", error)
        return Response(error.http_status, SOAP_CONTENT_TYPE, soap_fault(error.fault_code, error.message))
    except Exception:
        logger.exception("outbound message failed")
        metrics.add_metric(name="IntakeErrors", unit=MetricUnit.Count, value=1)
        return Response(500, SOAP_CONTENT_TYPE, soap_fault("Server", "internal error; please retry"))
    logger.info(
        "outbound message accepted",
        extra={
            "org_id": accepted.org_id,
            "notifications": len(accepted.requests),
            "producer_ids": accepted.producer_ids,
            "record_ids": [request.record_id for request in accepted.requests],
        },
    )
    metrics.add_metric(
        name="OutboundNotificationsAccepted", unit=MetricUnit.Count, value=len(accepted.requests)
    )
    return Response(200, SOAP_CONTENT_TYPE, ACK_RESPONSE)


@app.post("/salesforce/events")
def signed_events() -> Response[str]:
    """Enqueue the signed platform event(s), then answer 202; otherwise {"error": "..."}."""
    event = app.current_event
    try:
        body = _request_body().encode("utf-8")
        accepted = intake_service().accept_signed_events(
            body, event.headers.get(SIGNATURE_TIMESTAMP_HEADER), event.headers.get(SIGNATURE_HEADER)
        )
    except IntakeError as error:
        _log_refusal("signed event", error)
        return _json_response(error.http_status, {"error": error.message})
    except Exception:
        logger.exception("signed event failed")
        metrics.add_metric(name="IntakeErrors", unit=MetricUnit.Count, value=1)
        return _json_response(500, {"error": "internal error; please retry"})
    logger.info(
        "signed events accepted",
        extra={
            "org_id": accepted.org_id,
            "events": len(accepted.requests),
            "producer_ids": accepted.producer_ids,
            "record_ids": [request.record_id for request in accepted.requests],
        },
    )
    metrics.add_metric(name="SignedEventsAccepted", unit=MetricUnit.Count, value=len(accepted.requests))
    return _json_response(202, {"accepted": len(accepted.requests), "producer_ids": accepted.producer_ids})


def relayed_event(event: dict[str, Any]) -> dict[str, Any]:
    """An Event Relay event; raises on refusal or enqueue failure so it is retried or dead-lettered."""
    try:
        accepted = intake_service().accept_relayed_event(event)
    except IntakeError as error:
        detail_type = event.get("detail-type")
        shown = detail_type[:100] if isinstance(detail_type, str) else ""  # str() of a nested value may fail
        _log_refusal("relayed event", error, detail_type=shown)
        raise
    for reason in accepted.ignored:
        logger.info("relayed event ignored", extra={"org_id": accepted.org_id, "reason": reason})
    logger.info(
        "relayed event accepted",
        extra={
            "org_id": accepted.org_id,
            "requests": len(accepted.requests),
            "producer_ids": accepted.producer_ids,
            "record_ids": [request.record_id for request in accepted.requests],
        },
    )
    metrics.add_metric(name="RelayedRequestsAccepted", unit=MetricUnit.Count, value=len(accepted.requests))
    metrics.add_metric(name="RelayedEventsIgnored", unit=MetricUnit.Count, value=len(accepted.ignored))
    return {"accepted": len(accepted.requests), "ignored": accepted.ignored}


@logger.inject_lambda_context(clear_state=True, log_event=False)  # bodies and tokens stay out of logs
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Dispatch by event shape: EventBridge (Event Relay) or API Gateway REST (the two routes)."""
    if is_eventbridge_event(event):
        return relayed_event(event)
    if "httpMethod" in event:
        logger.append_keys(**_request_keys(event))
        return app.resolve(event, context)
    metrics.add_metric(name="UnrecognisedEvents", unit=MetricUnit.Count, value=1)
    raise ValueError("unrecognised event: expected an API Gateway REST request or an EventBridge event")


def _request_body() -> str:
    """The body as text; refused unless it is UTF-8 (a base64 body decoded first)."""
    try:
        body = app.current_event.decoded_body or ""
        body.encode("utf-8")  # an unpaired surrogate (from a JSON-escaped event body) is not text
    except (UnicodeError, ValueError):
        raise MalformedRequest("the request body is not UTF-8 text") from None
    return body


def _request_keys(event: dict[str, Any]) -> dict[str, str | None]:
    """Who sent the request, as API Gateway saw it: for every log line of the invocation."""
    context = event.get("requestContext")
    context = context if isinstance(context, dict) else {}
    identity = context.get("identity")
    identity = identity if isinstance(identity, dict) else {}
    return {
        "source_ip": _logged_text(identity.get("sourceIp"), 64),
        "user_agent": _logged_text(identity.get("userAgent"), MAX_LOGGED_USER_AGENT),
        "api_request_id": _logged_text(context.get("requestId"), 128),
        "http_path": _logged_text(event.get("path"), 128),
    }


def _logged_text(value: object, limit: int) -> str | None:
    """A value the caller chose (a user agent), printable and bounded; None when absent."""
    if not isinstance(value, str):
        return None
    shown = "".join(character if character.isprintable() else "?" for character in value[:limit])
    return shown + ("..." if len(value) > limit else "")


def _json_response(status: int, document: dict[str, Any]) -> Response[str]:
    return Response(status, "application/json", json.dumps(document))


def _log_refusal(what: str, error: IntakeError, **extra: str) -> None:
    log = logger.warning if error.http_status < 500 else logger.error
    log(f"{what} refused", extra={"status": error.http_status, "reason": error.message, **extra})
    metric = "IntakeFailures" if error.http_status >= 500 else "MessagesRefused"
    metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
