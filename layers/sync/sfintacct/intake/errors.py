"""Why the intake refuses or cannot take a message. Each type carries the HTTP status to answer.

Messages are safe to return to the sender: they say what is wrong, never echo secrets or bodies.
"""

from __future__ import annotations

from typing import ClassVar, Literal

FaultCode = Literal["Client", "Server"]


class IntakeError(Exception):
    """Base of every intake failure; `message` is what the sender is told."""

    http_status: ClassVar[int] = 500
    fault_code: ClassVar[FaultCode] = "Server"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestRefused(IntakeError):
    """The sender's request is wrong; sending it again unchanged will not help."""

    http_status = 400
    fault_code = "Client"


class MalformedRequest(RequestRefused):
    """Not XML/JSON, hostile XML, wrong envelope, missing fields, bad ids, wrong content type."""


class UnsupportedObject(RequestRefused):
    """The notification is about an object this integration does not sync."""


class SenderNotAllowed(RequestRefused):
    """Wrong organization or wrong shared token."""

    http_status = 403


class SignatureRejected(RequestRefused):
    """Missing, stale or wrong signature on a signed event."""

    http_status = 401


class RequestTooLarge(RequestRefused):
    """The body is larger than the intake accepts."""

    http_status = 413


class EnqueueFailed(IntakeError):
    """Not every request could be put on its queue; the sender must retry the whole message."""

    http_status = 503


class SecretUnavailable(IntakeError):
    """The intake secret could not be read (Secrets Manager unavailable or the secret malformed)."""

    http_status = 503


class IntakeMisconfigured(IntakeError):
    """The intake's environment is incomplete or invalid."""

    http_status = 500
