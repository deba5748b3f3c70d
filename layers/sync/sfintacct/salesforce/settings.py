"""Settings of the Salesforce client: which org, which credentials, how to talk to it.

Credentials come from a Secrets Manager secret (JSON), read through Powertools parameters:

    {"client_id": "...", "client_secret": "..."}                           client credentials flow
    {"client_id": "...", "private_key": "-----BEGIN ...", "username": "..."} JWT bearer flow

The secret may also hold the non-secret `login_url`, `username`, `auth_flow` and `jwt_audience`; the
environment variables below, when set, take precedence for those:

    SALESFORCE_SECRET_ARN       the secret (required by `load_salesforce_settings`)
    SALESFORCE_AUTH_FLOW        jwt_bearer | client_credentials (default: jwt_bearer when the secret
                                has a private_key, otherwise client_credentials)
    SALESFORCE_LOGIN_URL        https://login.salesforce.com, https://test.salesforce.com or the
                                My Domain URL (client credentials needs the My Domain URL)
    SALESFORCE_USERNAME         the integration user (JWT bearer `sub`)
    SALESFORCE_JWT_AUDIENCE     the JWT bearer `aud`; Salesforce accepts only https://login.salesforce.com,
                                https://test.salesforce.com or an Experience Cloud site URL. Default,
                                from the login URL: https://test.salesforce.com for test.salesforce.com
                                and sandbox My Domains (<name>--<sandbox>.sandbox.my.salesforce.com,
                                <name>--<sandbox>.my.salesforce.com, csNN instances, scratch orgs); the
                                login URL itself for an Experience Cloud site (*.my.site.com); else
                                https://login.salesforce.com: production My Domains included, and any
                                other host, such as a local sandbox on https://127.0.0.1:8443. Set it
                                for a site on a custom domain or with a path, e.g.
                                https://acme.my.site.com/partners
    SALESFORCE_API_VERSION      REST API version, default 62.0
    SALESFORCE_CA_FILE          extra CA bundle to trust (e.g. a local sandbox); never disables checks
    SALESFORCE_TIMEOUT_SECONDS  connect and read timeout of every HTTP call, default 20
    SALESFORCE_READ_RETRIES     retries of a GET on connection errors and 5xx, default 2
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any, Literal, Self
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

from sfintacct.salesforce.errors import SalesforceSettingsError
from sfintacct.settings_sources import merged_values, secret_named_by, validation_problems

AuthFlow = Literal["jwt_bearer", "client_credentials"]

SECRET_ARN_VARIABLE = "SALESFORCE_SECRET_ARN"  # noqa: S105 - a variable name, not a secret

PRODUCTION_AUDIENCE = "https://login.salesforce.com"
SANDBOX_AUDIENCE = "https://test.salesforce.com"
# Hosts of sandbox orgs: enhanced and legacy sandbox My Domains (<name>--<sandbox>...), the legacy
# sandbox instances (csNN) and scratch orgs.
_SANDBOX_HOST = re.compile(
    r"""^(?:test\.salesforce\.com
        |[a-z0-9-]+\.(?:sandbox|scratch)\.my\.salesforce\.com
        |[a-z0-9-]*--[a-z0-9-]+\.(?:cs[0-9]+\.)?my\.salesforce\.com
        |(?:[a-z0-9-]+\.)?cs[0-9]+\.(?:my\.)?salesforce\.com)$""",
    re.VERBOSE,
)
# Experience Cloud sites (enhanced domains), production and sandbox.
_SITE_HOST = re.compile(r"^[a-z0-9-]+\.(?:sandbox\.)?my\.site\.com$")

# Non-secret settings: environment variable -> settings field.
_ENVIRONMENT_FIELDS = {
    "SALESFORCE_AUTH_FLOW": "auth_flow",
    "SALESFORCE_LOGIN_URL": "login_url",
    "SALESFORCE_USERNAME": "username",
    "SALESFORCE_JWT_AUDIENCE": "jwt_audience",
    "SALESFORCE_API_VERSION": "api_version",
    "SALESFORCE_CA_FILE": "ca_file",
    "SALESFORCE_TIMEOUT_SECONDS": "timeout_seconds",
    "SALESFORCE_READ_RETRIES": "read_retries",
}
# Keys taken from the secret.
_SECRET_FIELDS = (
    "client_id",
    "client_secret",
    "private_key",
    "username",
    "login_url",
    "auth_flow",
    "jwt_audience",
)


class SalesforceSettings(BaseModel):
    """Everything the client needs to reach one Salesforce org. Secrets stay hidden in reprs and errors."""

    model_config = ConfigDict(frozen=True, extra="forbid", hide_input_in_errors=True)

    auth_flow: AuthFlow
    login_url: str = Field(description="Where tokens are requested, e.g. https://login.salesforce.com")
    client_id: str = Field(min_length=1, description="Consumer key of the connected / external client app")
    client_secret: SecretStr | None = Field(default=None, description="Consumer secret (client credentials)")
    username: str | None = Field(default=None, description="Integration user, the JWT `sub` (JWT bearer)")
    private_key: SecretStr | None = Field(
        default=None, description="PEM RSA key signing the JWT (JWT bearer)"
    )
    jwt_audience: str | None = Field(
        default=None,
        description="The JWT `aud` (JWT bearer); default derived from login_url, see jwt_audience_for",
    )
    api_version: str = Field(default="62.0", pattern=r"^[0-9]{2,3}\.0$")
    ca_file: str | None = Field(default=None, description="Extra CA bundle to verify TLS with")
    timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    read_retries: int = Field(default=2, ge=0, le=5)

    @field_validator("login_url")
    @classmethod
    def _https_origin(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError("login_url must be an https URL such as https://login.salesforce.com")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("login_url must be the site only, without a path")
        return f"https://{parts.netloc}"

    @field_validator("jwt_audience")
    @classmethod
    def _https_audience(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value.strip())
        if parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
            raise ValueError(
                "jwt_audience must be https://login.salesforce.com, https://test.salesforce.com "
                "or an Experience Cloud site URL"
            )
        return f"https://{parts.netloc}{parts.path}".rstrip("/")

    @field_validator("ca_file")
    @classmethod
    def _readable_ca_file(cls, value: str | None) -> str | None:
        if value is not None and not os.path.isfile(value):
            raise ValueError("ca_file must name an existing CA bundle file")
        return value

    @model_validator(mode="after")
    def _credentials_for_flow(self) -> Self:
        if self.auth_flow == "jwt_bearer":
            if not self.username:
                raise ValueError("the JWT bearer flow needs username")
            if self.private_key is None or not self.private_key.get_secret_value().strip():
                raise ValueError("the JWT bearer flow needs private_key")
        elif self.client_secret is None or not self.client_secret.get_secret_value():
            raise ValueError("the client credentials flow needs client_secret")
        return self

    @property
    def token_url(self) -> str:
        """The OAuth 2.0 token endpoint."""
        return f"{self.login_url}/services/oauth2/token"

    @property
    def assertion_audience(self) -> str:
        """The `aud` of the JWT bearer assertion: jwt_audience, else derived from login_url."""
        return self.jwt_audience or jwt_audience_for(self.login_url)

    @property
    def cache_key(self) -> tuple[str, str, str]:
        """Identifies the Salesforce identity these settings log in as (login URL, client, user)."""
        return (self.login_url, self.client_id, self.username or "")


def jwt_audience_for(login_url: str) -> str:
    """The JWT bearer `aud` Salesforce expects for a login URL.

    Salesforce accepts https://login.salesforce.com (production, whatever host the token is asked
    from, My Domain included), https://test.salesforce.com (sandboxes) or an Experience Cloud site URL.
    """
    host = (urlsplit(login_url).hostname or "").lower()
    if _SANDBOX_HOST.match(host):
        return SANDBOX_AUDIENCE
    if _SITE_HOST.match(host):
        return f"https://{host}"
    return PRODUCTION_AUDIENCE


def settings_from_sources(secret: Mapping[str, Any], environ: Mapping[str, str]) -> SalesforceSettings:
    """Build settings from the decoded secret and the environment (environment wins for non-secret keys).

    Raises SalesforceSettingsError naming the missing or invalid settings, never their values.
    """
    values = merged_values(secret, _SECRET_FIELDS, environ, _ENVIRONMENT_FIELDS)
    values.setdefault("auth_flow", "jwt_bearer" if "private_key" in values else "client_credentials")
    try:
        return SalesforceSettings.model_validate(values)
    except ValidationError as error:
        raise SalesforceSettingsError(f"Invalid Salesforce settings: {validation_problems(error)}") from None


def load_salesforce_settings(environ: Mapping[str, str] | None = None) -> SalesforceSettings:
    """Settings from the secret named by SALESFORCE_SECRET_ARN plus the environment (see module doc).

    The secret is cached for five minutes; Powertools' GetParameterError (secret missing, no access,
    AWS unreachable) propagates unchanged.
    """
    environment = os.environ if environ is None else environ
    secret = secret_named_by(environment, SECRET_ARN_VARIABLE, "Salesforce", SalesforceSettingsError)
    return settings_from_sources(secret, environment)
