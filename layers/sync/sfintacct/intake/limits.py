"""How large a request the intake takes: every body that can reach the function.

API Gateway passes bodies of up to 10 MB, but AWS Lambda takes at most 6 MB (6,291,456 bytes) per
synchronous invocation, so a larger request never reaches the intake. Salesforce documents no size
limit for an Outbound Message (up to 100 notifications, each with every field the admin chose, e.g. a
32,000-character Description), so the intake refuses nothing that could arrive. The work queues are
not at risk: a SyncRequest carries ids and timestamps only.
"""

from __future__ import annotations

from sfintacct.intake.errors import RequestTooLarge

MAX_REQUEST_BODY_BYTES = 6 * 1024 * 1024


def check_body_size(body_size: int, what: str) -> None:
    """Refuse a body over `MAX_REQUEST_BODY_BYTES`; `what` names it ("the Outbound Message")."""
    if body_size > MAX_REQUEST_BODY_BYTES:
        raise RequestTooLarge(
            f"{what} is {body_size} bytes; at most {MAX_REQUEST_BODY_BYTES} bytes (6 MiB, the AWS Lambda "
            "request limit) can be accepted"
        )
