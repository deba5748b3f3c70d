"""OAuth 2.0 access tokens for the Salesforce client: JWT bearer and client credentials, cached per container.

Salesforce does not say when an access token expires (it follows the org's session timeout), so a
token is kept until Salesforce answers INVALID_SESSION_ID; the client then drops it here and asks
for a new one. The cache is the only module-level state of the client: a warm Lambda container
reuses its token instead of logging in on every invocation.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests

from sfintacct.salesforce.error_mapping import error_from_request_exception
from sfintacct.salesforce.errors import (
    SalesforceAuthenticationError,
    SalesforceErrorDetail,
    SalesforceSettingsError,
    TransientSalesforceError,
)
from sfintacct.salesforce.settings import SalesforceSettings

logger = logging.getLogger(__name__)

JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME_SECONDS = 180
# OAuth error codes that mean "try again later" rather than "fix the configuration".
_TRANSIENT_OAUTH_ERRORS = frozenset({"unknown_error", "server_error", "temporarily_unavailable"})


@dataclass(frozen=True)
class AccessToken:
    """A Salesforce access token and the instance it is valid for."""

    instance_url: str
    value: str = field(repr=False)
    obtained_at: float = field(default_factory=time.time)


_token_cache: dict[tuple[str, str, str], AccessToken] = {}


def get_access_token(settings: SalesforceSettings, session: requests.Session) -> AccessToken:
    """The cached token for these settings, or a new one from the token endpoint."""
    cached = _token_cache.get(settings.cache_key)
    if cached is not None:
        return cached
    token = request_access_token(settings, session)
    _token_cache[settings.cache_key] = token
    return token


def invalidate_access_token(settings: SalesforceSettings, token: AccessToken) -> None:
    """Forget `token` (Salesforce refused it); a newer token cached meanwhile is kept."""
    if _token_cache.get(settings.cache_key) is token:
        del _token_cache[settings.cache_key]


def clear_token_cache() -> None:
    """Forget every cached token."""
    _token_cache.clear()


def request_access_token(settings: SalesforceSettings, session: requests.Session) -> AccessToken:
    """Ask the token endpoint for a new access token with the configured flow (one POST, no retry)."""
    form: dict[str, str]
    auth: tuple[str, str] | None = None
    if settings.auth_flow == "jwt_bearer":
        form = {"grant_type": JWT_BEARER_GRANT, "assertion": build_jwt_assertion(settings, time.time())}
    else:
        assert settings.client_secret is not None  # guaranteed by SalesforceSettings
        form = {"grant_type": "client_credentials"}
        auth = (settings.client_id, settings.client_secret.get_secret_value())
    try:
        response = session.post(
            settings.token_url, data=form, auth=auth, headers={"Accept": "application/json"}
        )
    except requests.RequestException as exc:
        raise error_from_request_exception(exc, "Salesforce token request") from None
    token = _token_from_response(response)
    logger.info(
        "Obtained a Salesforce access token",
        extra={"auth_flow": settings.auth_flow, "login_url": settings.login_url},
    )
    return token


def build_jwt_assertion(settings: SalesforceSettings, now: float) -> str:
    """The signed JWT of the JWT bearer flow: iss=client id, sub=username, aud, exp=now+3 min.

    `aud` is settings.assertion_audience: jwt_audience, else derived from the login URL.
    """
    assert settings.private_key is not None  # guaranteed by SalesforceSettings
    claims = {
        "iss": settings.client_id,
        "sub": settings.username,
        "aud": settings.assertion_audience,
        "exp": int(now) + JWT_LIFETIME_SECONDS,
    }
    try:
        return jwt.encode(claims, settings.private_key.get_secret_value(), algorithm="RS256")
    except (ValueError, TypeError, jwt.PyJWTError):
        raise SalesforceSettingsError("private_key is not a usable RSA private key in PEM format") from None


def _token_from_response(response: requests.Response) -> AccessToken:
    body = _json_object(response)
    if response.status_code == 200:
        access_token = body.get("access_token")
        instance_url = body.get("instance_url")
        if isinstance(access_token, str) and access_token and _is_https_url(instance_url):
            assert isinstance(instance_url, str)
            return AccessToken(instance_url=instance_url.rstrip("/"), value=access_token)
        raise TransientSalesforceError(
            "Salesforce token response lacks access_token or an https instance_url", status=200
        )
    error_code = str(body.get("error") or f"HTTP {response.status_code}")
    description = str(body.get("error_description") or "")
    detail = SalesforceErrorDetail(error_code=error_code, message=description)
    message = f"Salesforce token request refused: {detail.describe()}"
    if response.status_code >= 500 or response.status_code == 429 or error_code in _TRANSIENT_OAUTH_ERRORS:
        raise TransientSalesforceError(message, status=response.status_code, details=[detail])
    raise SalesforceAuthenticationError(message, status=response.status_code, details=[detail])


def _json_object(response: requests.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_https_url(value: object) -> bool:
    if not isinstance(value, str):
        return False
    parts = urlsplit(value)
    return parts.scheme == "https" and bool(parts.netloc)
