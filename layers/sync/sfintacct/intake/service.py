"""The intake's three entry points: validate everything, then enqueue, then say so.

Each method either returns after every SyncRequest of the message is on its queue, or raises an
`IntakeError` (a refusal before anything was sent, or `EnqueueFailed`/`SecretUnavailable` when
the sender should retry).

`note`, when given, is told what becomes known about a message as it is checked (`auth`: how the
sender proved itself; `action_id`: the Outbound Message's ActionId, once the body is parsed), so every
log line of the request can carry it, a refusal's too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sfintacct.intake.client_certificate import ClientCertificate
from sfintacct.intake.errors import IntakeMisconfigured, MalformedRequest
from sfintacct.intake.event_relay import EventOutcome, parse_relayed_event, sync_requests_from_relayed_event
from sfintacct.intake.intake_secret import IntakeSecretSource
from sfintacct.intake.outbound_message import (
    check_outbound_content_type,
    check_outbound_size,
    parse_outbound_message,
    sync_requests_from_outbound_message,
)
from sfintacct.intake.platform_event import (
    check_event_body_size,
    event_org_id,
    parse_event_callout,
    sync_request_from_platform_event,
    verify_event_signature,
)
from sfintacct.intake.sender_checks import (
    check_org_allowed,
    check_outbound_authentication_configured,
    check_outbound_sender,
)
from sfintacct.intake.settings import IntakeSettings
from sfintacct.intake.work_queues import QueueRoutes, QueueSender, enqueue_sync_requests
from sfintacct.sync_request import SyncRequest

Note = Callable[..., None]  # note(key=value, ...): what is known so far, for the log lines


def utc_now() -> datetime:
    return datetime.now(UTC)


def _ignore(**_: Any) -> None:
    pass


def _shown_id(value: str | None) -> str | None:
    """An id from a body not yet checked, fit for a log line: letters and digits, at most 40."""
    if value is None:
        return None
    return "".join(
        character if character.isascii() and character.isalnum() else "?" for character in value[:40]
    )


@dataclass(frozen=True)
class Accepted:
    """What an accepted message became (for the response and the logs; no field values)."""

    org_id: str
    requests: list[SyncRequest]
    ignored: list[str] = field(default_factory=list)

    @property
    def producer_ids(self) -> list[str]:
        return [request.producer_id for request in self.requests]


class IntakeService:
    """Validates Salesforce notifications and enqueues one SyncRequest per record."""

    def __init__(
        self,
        settings: IntakeSettings,
        secret_source: IntakeSecretSource,
        sender: QueueSender,
        clock: Callable[[], datetime] = utc_now,
        unix_time: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self._secret_source = secret_source
        self._sender = sender
        self._clock = clock
        self._unix_time = unix_time
        self._routes = QueueRoutes(settings.customer_queue_url, settings.order_queue_url)
        self._trusted_certificate = settings.trusted_client_certificate()

    def check_outbound_authentication(self) -> None:
        """Raise `IntakeMisconfigured` (naming the missing secret key) when no Outbound Message could pass.

        Run when an execution environment builds its service (see `sfintacct.intake.runtime`), so an
        intake deployed without a token and without mutual TLS fails every request, loudly, from the
        first one; raises `SecretUnavailable` when the secret cannot be read.
        """
        check_outbound_authentication_configured(
            self._secret_source.intake_secret().outbound_tokens(), self._trusted_certificate
        )

    def accept_outbound_message(
        self,
        body: str,
        content_type: str | None,
        token: str | None,
        client_certificate: ClientCertificate | None = None,
        *,
        note: Note = _ignore,
    ) -> Accepted:
        """A SOAP Outbound Message from a sender with a token (the `token` URL query parameter) or the
        trusted client certificate (as API Gateway verified it); checked before the body is parsed."""
        check_outbound_size(len(body.encode("utf-8", "surrogatepass")))
        auth = check_outbound_sender(
            token,
            client_certificate,
            self._secret_source.intake_secret().outbound_tokens(),
            self._trusted_certificate,
        )
        note(auth=auth)
        check_outbound_content_type(content_type)
        message = parse_outbound_message(body)
        note(action_id=_shown_id(message.action_id))
        org_id = check_org_allowed(message.organization_id, self.settings.org_ids)
        requests = sync_requests_from_outbound_message(message, org_id, self._clock())
        enqueue_sync_requests(requests, self._sender, self._routes)
        return Accepted(org_id=org_id, requests=requests)

    def accept_signed_events(
        self, body: bytes, timestamp_header: str | None, signature_header: str | None
    ) -> Accepted:
        """A Platform Event callout (one event or a list), signed as `platform_event` describes."""
        check_event_body_size(len(body))
        signing_key = self._secret_source.intake_secret().event_signing_key
        if signing_key is None:
            raise IntakeMisconfigured(
                "the intake secret has no event_signing_key; signed events are disabled"
            )
        verify_event_signature(
            body=body,
            timestamp_header=timestamp_header,
            signature_header=signature_header,
            signing_key=signing_key.get_secret_value().encode("utf-8"),
            now=self._unix_time(),
            max_age_seconds=self.settings.event_max_age_seconds,
        )
        events = parse_event_callout(body)
        received_at = self._clock()
        requests = []
        org_ids = set()
        for position, payload in enumerate(events, start=1):
            where = "the event" if len(events) == 1 else f"event {position}"
            org_id = self._callout_org_id(payload, where)
            org_ids.add(org_id)
            requests.append(
                sync_request_from_platform_event(
                    payload, source="platform_event", org_id=org_id, received_at=received_at, where=where
                )
            )
        enqueue_sync_requests(requests, self._sender, self._routes)
        return Accepted(org_id=",".join(sorted(org_ids)), requests=requests)

    def accept_relayed_event(self, event: Mapping[str, Any]) -> Accepted:
        """An Event Relay event from EventBridge (custom platform event or Change Data Capture)."""
        relayed = parse_relayed_event(event)
        org_id = check_org_allowed(relayed.org_id, self.settings.org_ids)
        outcome: EventOutcome = sync_requests_from_relayed_event(
            relayed,
            org_id=org_id,
            received_at=self._clock(),
            integration_user_id=self.settings.integration_user_id,
        )
        enqueue_sync_requests(outcome.requests, self._sender, self._routes)
        return Accepted(org_id=org_id, requests=outcome.requests, ignored=outcome.ignored)

    def _callout_org_id(self, payload: Mapping[str, Any], where: str) -> str:
        """The org of a signed event: the one it names, or the only allowed org when it names none."""
        named = event_org_id(payload)
        if named is not None:
            return check_org_allowed(named, self.settings.org_ids)
        if len(self.settings.org_ids) == 1:
            return self.settings.org_ids[0]
        raise MalformedRequest(
            f"{where} has no OrganizationId; it is required when several organizations are allowed"
        )
