"""Settings of the intake, read from its environment, and the shape of its secret.

SALESFORCE_ORG_IDS               comma list of allowed organization ids (15 or 18 characters)
CUSTOMER_QUEUE_URL               queue of Account sync requests (customer upsert)
ORDER_QUEUE_URL                  queue of Opportunity sync requests (opportunity to order)
INTAKE_SECRET_ARN                Secrets Manager secret (JSON), see `IntakeSecret`; optional locally
SALESFORCE_INTEGRATION_USER_ID   user the workers write back as; its CDC changes are ignored
EVENT_MAX_AGE_SECONDS            how far a signed event's timestamp may be from now (default 300)
"""

from __future__ import annotations

from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from sfintacct.intake.errors import IntakeMisconfigured
from sfintacct.salesforce_ids import (
    ORGANIZATION_KEY_PREFIX,
    USER_KEY_PREFIX,
    InvalidSalesforceId,
    to_case_safe_id_with_prefix,
)

DEFAULT_EVENT_MAX_AGE_SECONDS = 300

_ENVIRONMENT_FIELDS = {
    "SALESFORCE_ORG_IDS": "org_ids",
    "CUSTOMER_QUEUE_URL": "customer_queue_url",
    "ORDER_QUEUE_URL": "order_queue_url",
    "INTAKE_SECRET_ARN": "intake_secret_arn",
    "SALESFORCE_INTEGRATION_USER_ID": "integration_user_id",
    "EVENT_MAX_AGE_SECONDS": "event_max_age_seconds",
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

    @field_validator("intake_secret_arn", "integration_user_id", mode="before")
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


class IntakeSecret(BaseModel):
    """The intake secret: {"outbound_message_token": optional str, "event_signing_key": str}."""

    model_config = ConfigDict(frozen=True, extra="ignore", hide_input_in_errors=True)

    outbound_message_token: SecretStr | None = None
    event_signing_key: SecretStr | None = None

    @field_validator("outbound_message_token", "event_signing_key", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        if isinstance(value, str) and not value:
            return None
        return value


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
                problems.append(f"{variables.get(field, field)}: {detail['msg']}")
        else:
            problems.append(str(error))
        raise IntakeMisconfigured("the intake is not configured: " + "; ".join(problems)) from None
