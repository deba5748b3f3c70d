"""Settings of the Intacct client: which company, which credentials, how patiently to talk to it.

Credentials come from a Secrets Manager secret (JSON), read through Powertools parameters:

    {"sender_id": "...", "sender_password": "...", "company_id": "...",
     "user_id": "...", "user_password": "..."}

The secret may also hold the non-secret `endpoint_url` and `entity_id`; the environment variables
below, when set, take precedence for those:

    INTACCT_SECRET_ARN             the secret (required by `load_intacct_settings`)
    INTACCT_ENDPOINT_URL           login endpoint, default https://api.intacct.com/ia/xml/xmlgw.phtml
    INTACCT_ENTITY_ID              entity (location) of a multi-entity company
    INTACCT_CA_FILE                extra CA bundle to trust (e.g. a local sandbox); never disables checks
    INTACCT_TIMEOUT_SECONDS        timeout of each HTTP exchange, default 60
    INTACCT_RETRY_BUDGET_SECONDS   how long transient failures are retried, default 60
    INTACCT_MAX_ATTEMPTS           attempts per call including the first, default 5
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Self
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from sfintacct.intacct.errors import IntacctSettingsError
from sfintacct.settings_sources import merged_values, secret_named_by, validation_problems

DEFAULT_ENDPOINT_URL = "https://api.intacct.com/ia/xml/xmlgw.phtml"
SECRET_ARN_VARIABLE = "INTACCT_SECRET_ARN"  # noqa: S105 - an environment variable name

# Non-secret settings: environment variable -> settings field.
_ENVIRONMENT_FIELDS = {
    "INTACCT_ENDPOINT_URL": "endpoint_url",
    "INTACCT_ENTITY_ID": "entity_id",
    "INTACCT_CA_FILE": "ca_file",
    "INTACCT_TIMEOUT_SECONDS": "timeout_seconds",
    "INTACCT_RETRY_BUDGET_SECONDS": "retry_budget_seconds",
    "INTACCT_MAX_ATTEMPTS": "max_attempts",
}
# Keys taken from the secret.
_SECRET_FIELDS = (
    "sender_id",
    "sender_password",
    "company_id",
    "user_id",
    "user_password",
    "endpoint_url",
    "entity_id",
)


class IntacctSettings(BaseModel):
    """Everything the client needs to reach one Intacct company. Secrets stay hidden in reprs and errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    endpoint_url: str = Field(default=DEFAULT_ENDPOINT_URL, description="The login (first) gateway URL")
    sender_id: str = Field(min_length=1, description="Web Services sender ID")
    sender_password: SecretStr = Field(description="Web Services sender password")
    company_id: str = Field(min_length=1)
    user_id: str = Field(min_length=1, description="Web Services user")
    user_password: SecretStr
    entity_id: str | None = Field(default=None, description="Entity (locationid) of a multi-entity company")
    ca_file: str | None = Field(default=None, description="Extra CA bundle (PEM) to verify TLS with")
    timeout_seconds: float = Field(default=60.0, gt=0, le=900)
    retry_budget_seconds: float = Field(default=60.0, ge=0, le=900)
    max_attempts: int = Field(default=5, ge=1, le=20)
    retry_base_delay_seconds: float = Field(default=0.5, ge=0, le=60)
    retry_max_delay_seconds: float = Field(default=8.0, ge=0, le=300)
    use_sessions: bool = Field(default=True, description="Open an API session (getAPISession) and reuse it")

    @field_validator("endpoint_url")
    @classmethod
    def _https_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError("endpoint_url must be an https URL such as " + DEFAULT_ENDPOINT_URL)
        return value.strip()

    @field_validator("entity_id", "ca_file")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value.strip() or None if value is not None else None

    @field_validator("sender_password", "user_password")
    @classmethod
    def _not_empty(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _delays_in_order(self) -> Self:
        if self.retry_max_delay_seconds < self.retry_base_delay_seconds:
            raise ValueError("retry_max_delay_seconds must be at least retry_base_delay_seconds")
        return self

    @property
    def session_key(self) -> tuple[str, str, str, str]:
        """Identifies an API session: login endpoint, company, entity and user."""
        return (self.endpoint_url, self.company_id, self.entity_id or "", self.user_id)


def settings_from_sources(secret: Mapping[str, Any], environ: Mapping[str, str]) -> IntacctSettings:
    """Build settings from the decoded secret and the environment (environment wins for non-secret keys).

    Raises IntacctSettingsError naming the missing or invalid settings, never their values.
    """
    values = merged_values(secret, _SECRET_FIELDS, environ, _ENVIRONMENT_FIELDS)
    return validate_settings(values)


def validate_settings(values: Mapping[str, Any]) -> IntacctSettings:
    """IntacctSettings from plain values; IntacctSettingsError (without values) when invalid."""
    try:
        return IntacctSettings.model_validate(dict(values))
    except ValidationError as error:
        raise IntacctSettingsError(f"Invalid Intacct settings: {validation_problems(error)}") from None


def load_intacct_settings(environ: Mapping[str, str] | None = None) -> IntacctSettings:
    """Settings from the secret named by INTACCT_SECRET_ARN plus the environment (see module doc).

    The secret is cached for five minutes; Powertools' GetParameterError (secret missing, no access,
    AWS unreachable) propagates unchanged.
    """
    environment = os.environ if environ is None else environ
    secret = secret_named_by(environment, SECRET_ARN_VARIABLE, "Intacct", IntacctSettingsError)
    return settings_from_sources(secret, environment)
