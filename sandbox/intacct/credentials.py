"""The Web Services sender and company user the sandbox accepts; generated fresh for every start."""

from __future__ import annotations

import secrets
from dataclasses import dataclass


@dataclass(frozen=True)
class IntacctSandboxCredentials:
    """Sender (Web Services licence) and user login of the sandbox company."""

    sender_id: str
    sender_password: str
    company_id: str
    user_id: str
    user_password: str

    @classmethod
    def generate(cls) -> IntacctSandboxCredentials:
        """Random credentials: nothing secret is ever written into the repository."""
        return cls(
            sender_id=f"sender-{secrets.token_hex(4)}",
            sender_password=secrets.token_urlsafe(18),
            company_id=f"company-{secrets.token_hex(4)}",
            user_id=f"xml_gateway_{secrets.token_hex(3)}",
            user_password=secrets.token_urlsafe(18),
        )

    def __repr__(self) -> str:
        return (
            f"IntacctSandboxCredentials(sender_id={self.sender_id!r}, company_id={self.company_id!r}, "
            f"user_id={self.user_id!r}, passwords=***)"
        )
