"""Settings of the intake, read from its environment, and the shape of its secret.

SALESFORCE_ORG_IDS               comma list of allowed organization ids (15 or 18 characters)
CUSTOMER_QUEUE_URL               queue of Account sync requests (customer upsert)
ORDER_QUEUE_URL                  queue of Opportunity sync requests (opportunity to order)
INTAKE_SECRET_ARN                Secrets Manager secret (JSON), see `IntakeSecret`; optional locally
SALESFORCE_INTEGRATION_USER_ID   user the workers write back as; its CDC changes are ignored
EVENT_MAX_AGE_SECONDS            how far a signed event's timestamp may be from now (default 300)
INTAKE_SECRET_CACHE_SECONDS      how long an execution environment keeps the secret it read (default 300)
OUTBOUND_CLIENT_CERT_SUBJECT     mutual TLS: accept Outbound Messages from a client certificate with this
                                 subject (as API Gateway verified it); unset: no client certificate counts
OUTBOUND_CLIENT_CERT_ISSUER      mutual TLS: and with this issuer (optional)
OUTBOUND_CLIENT_CERT_SERIALS     mutual TLS: and with one of these serial numbers (hex, comma list; optional)

Outbound Messages are accepted only from a sender that proves itself: a token of the intake secret in
the `token` query parameter, or the trusted client certificate. An intake with neither is misconfigured.
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sfintacct.intake.client_certificate import TrustedClientCertificate
from sfintacct.intake.errors import IntakeMisconfigured
from sfintacct.salesforce_ids import (
    ORGANIZATION_KEY_PREFIX,
    USER_KEY_PREFIX,
    InvalidSalesforceId,
    to_case_safe_id_with_prefix,
)

DEFAULT_EVENT_MAX_AGE_SECONDS = 300
DEFAULT_SECRET_CACHE_SECONDS = 300
MAX_OUTBOUND_TOKENS = 10
# The intake secret's keys for Outbound Message tokens: a list, and the single key of earlier versions.
OUTBOUND_TOKENS_KEY = "outbound_message_tokens"
OUTBOUND_TOKEN_KEY = "outbound_message_token"  # noqa: S105 - a key name, not a secret
CLIENT_CERT_SUBJECT_VARIABLE = "OUTBOUND_CLIENT_CERT_SUBJECT"

_ENVIRONMENT_FIELDS = {
    "SALESFORCE_ORG_IDS": "org_ids",
    "CUSTOMER_QUEUE_URL": "customer_queue_url",
    "ORDER_QUEUE_URL": "order_queue_url",
    "INTAKE_SECRET_ARN": "intake_secret_arn",
    "SALESFORCE_INTEGRATION_USER_ID": "integration_user_id",
    "EVENT_MAX_AGE_SECONDS": "event_max_age_seconds",
    "INTAKE_SECRET_CACHE_SECONDS": "secret_cache_seconds",
    CLIENT_CERT_SUBJECT_VARIABLE: "client_cert_subject",
    "OUTBOUND_CLIENT_CERT_ISSUER": "client_cert_issuer",
    "OUTBOUND_CLIENT_CERT_SERIALS": "client_cert_serials",
}


class IntakeSettings(BaseModel):
    """What the intake needs to know; ids are normalised to 18 characters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    org_ids: tuple[str, ...] = Field(min_length=1)
    customer_queue_url: str = Field(min_length=1)
    order_queue_url: str = Field(min_length=1)
    intake_secret_arn: str | None = None
    integration_user_id: str | None = None
    event_max_age_seconds: int = Field(default=DEFAULT_EVENT_MAX_AGE_SECONDS, gt=0, le=86400)
    secret_cache_seconds: int = Field(default=DEFAULT_SECRET_CACHE_SECONDS, gt=0, le=3600)
    client_cert_subject: str | None = None
    client_cert_issuer: str | None = None
    client_cert_serials: tuple[str, ...] = ()

    @field_validator("org_ids", mode="before")
    @classmethod
    def _split_org_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("org_ids")
    @classmethod
    def _org_ids_are_case_safe(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(
            to_case_safe_id_with_prefix(org_id, ORGANIZATION_KEY_PREFIX, "an organization")
            for org_id in value
        )

    @field_validator("client_cert_serials", mode="before")
    @classmethod
    def _split_serials(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator(
        "intake_secret_arn", "integration_user_id", "client_cert_subject", "client_cert_issuer", mode="before"
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        return value.strip() if isinstance(value, str) else value

    @field_validator("integration_user_id")
    @classmethod
    def _user_id_is_case_safe(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return to_case_safe_id_with_prefix(value, USER_KEY_PREFIX, "a user")

    @model_validator(mode="after")
    def _client_certificate_is_readable(self) -> IntakeSettings:
        if self.client_cert_subject is None:
            if self.client_cert_issuer is not None or self.client_cert_serials:
                raise ValueError(
                    f"OUTBOUND_CLIENT_CERT_ISSUER and OUTBOUND_CLIENT_CERT_SERIALS need "
                    f"{CLIENT_CERT_SUBJECT_VARIABLE}: a certificate is trusted by its subject"
                )
            return self
        self.trusted_client_certificate()  # raises ValueError for a subject, issuer or serial it cannot read
        return self

    def trusted_client_certificate(self) -> TrustedClientCertificate | None:
        """The client certificate Outbound Messages may come with (mutual TLS), or None when unset."""
        if self.client_cert_subject is None:
            return None
        return TrustedClientCertificate.from_settings(
            self.client_cert_subject, self.client_cert_issuer, self.client_cert_serials
        )


class IntakeSecret(BaseModel):
    """The intake secret (JSON): {"outbound_message_tokens": [str, ...], "outbound_message_token": str,
    "event_signing_key": str}, every key optional.

    `outbound_message_tokens` holds the Outbound Message tokens in use, two of them while one is being
    replaced; `outbound_message_token`, the single token of earlier versions, still counts as one more.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    outbound_message_token: SecretStr | None = None
    outbound_message_tokens: tuple[SecretStr, ...] = Field(default=(), max_length=MAX_OUTBOUND_TOKENS)
    event_signing_key: SecretStr | None = None

    @field_validator("outbound_message_token", "event_signing_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value:
            return None
        return value

    @field_validator("outbound_message_tokens", mode="before")
    @classmethod
    def _a_list_of_tokens(cls, value: object) -> object:
        if value is None:
            return ()
        if not isinstance(value, list | tuple):
            raise ValueError(f"{OUTBOUND_TOKENS_KEY} must be a list of strings")
        texts = [token.get_secret_value() if isinstance(token, SecretStr) else token for token in value]
        if any(not isinstance(text, str) or not text for text in texts):
            raise ValueError(f"{OUTBOUND_TOKENS_KEY} must hold non-empty strings")
        return tuple(value)

    def outbound_tokens(self) -> tuple[tuple[str, SecretStr], ...]:
        """Every accepted token with the key it comes from (`outbound_message_tokens[0]`, ...)."""
        tokens = [
            (f"{OUTBOUND_TOKENS_KEY}[{index}]", token)
            for index, token in enumerate(self.outbound_message_tokens)
        ]
        if self.outbound_message_token is not None:
            tokens.append((OUTBOUND_TOKEN_KEY, self.outbound_message_token))
        return tuple(tokens)


def load_intake_settings(environ: Mapping[str, str]) -> IntakeSettings:
    """Read the settings from environment variables; say which variable is wrong when one is."""
    values = {field: environ[name] for name, field in _ENVIRONMENT_FIELDS.items() if name in environ}
    try:
        return IntakeSettings.model_validate(values)
    except (ValidationError, InvalidSalesforceId) as error:
        variables = {field: name for name, field in _ENVIRONMENT_FIELDS.items()}
        problems = []
        if isinstance(error, ValidationError):
            for detail in error.errors(include_input=False, include_url=False):
                field = str(detail["loc"][0]) if detail["loc"] else ""
                message = detail["msg"].removeprefix("Value error, ")
                problems.append(f"{variables[field]}: {message}" if field in variables else message)
        else:
            problems.append(str(error))
        raise IntakeMisconfigured("the intake is not configured: " + "; ".join(problems)) from None
