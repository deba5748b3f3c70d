"""OAuth 2.0 token endpoint (client credentials and JWT bearer), access tokens, and test credentials.

Token requests are form-encoded POSTs to /services/oauth2/token, as simple-salesforce sends them.
Successes and failures have Salesforce's JSON shapes: {"access_token", "instance_url", "id", ...} and
{"error": ..., "error_description": ...}.

A JWT bearer assertion's `aud` must be https://login.salesforce.com, https://test.salesforce.com or
the URL of one of the org's Experience Cloud sites (`community_urls`), as Salesforce requires; any other
audience (the instance URL and My Domain URLs included) is refused with invalid_grant "audience is
invalid".
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from sandbox.salesforce.ids import IdGenerator

TOKEN_PATH = "/services/oauth2/token"  # noqa: S105 (a URL path, not a secret)
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_CREDENTIALS_GRANT = "client_credentials"
SESSION_TIMEOUT_SECONDS = 2 * 60 * 60
LOGIN_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
CONSUMER_KEY_CHARACTERS = string.ascii_letters + string.digits + "._"


@dataclass(frozen=True)
class SalesforceSandboxCredentials:
    """The org, its connected app and its integration user, as an admin would set them up."""

    org_id: str
    client_id: str
    client_secret: str
    username: str
    integration_user_id: str
    jwt_certificate_pem: str

    @classmethod
    def generate(cls, jwt_certificate_pem: str) -> SalesforceSandboxCredentials:
        """Fresh random ids and secrets; `jwt_certificate_pem` is the certificate registered for JWT."""
        ids = IdGenerator()
        suffix = secrets.token_hex(4)
        return cls(
            org_id=ids.for_object("Organization"),
            client_id="3MVG9" + "".join(secrets.choice(CONSUMER_KEY_CHARACTERS) for _ in range(80)),
            client_secret=secrets.token_hex(32).upper(),
            username=f"integration.{suffix}@sfintacct-sandbox.example.com",
            integration_user_id=ids.for_object("User"),
            jwt_certificate_pem=jwt_certificate_pem,
        )


@dataclass(frozen=True)
class JwtSigningKey:
    """An RSA key pair for the JWT bearer flow: the private key signs, the certificate is registered."""

    private_key_pem: str
    certificate_pem: str


def create_jwt_signing_key(common_name: str = "sfintacct integration") -> JwtSigningKey:
    """A new 2048-bit RSA key and a self-signed certificate for it (valid for a year)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    issued = datetime.now(UTC) - timedelta(minutes=5)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(issued)
        .not_valid_after(issued + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return JwtSigningKey(
        private_key_pem=key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
        certificate_pem=certificate.public_bytes(serialization.Encoding.PEM).decode(),
    )


@dataclass
class Session:
    """An issued access token and the user it acts as."""

    token: str
    user_id: str
    client_id: str
    expires_at: float


class SessionStore:
    """Issued access tokens (thread-safe). Sessions slide: each use extends the timeout."""

    def __init__(self, org_id: str) -> None:
        self._org_id = org_id
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}

    def issue(self, user_id: str, client_id: str) -> Session:
        token = f"{self._org_id[:15]}!" + secrets.token_urlsafe(72).replace("-", ".")
        session = Session(token, user_id, client_id, time.monotonic() + SESSION_TIMEOUT_SECONDS)
        with self._lock:
            self._sessions[token] = session
        return session

    def check(self, token: str) -> Session | None:
        """The live session for a token (its timeout extended), or None when unknown or expired."""
        now = time.monotonic()
        with self._lock:
            session = self._sessions.get(token)
            if session is None:
                return None
            if session.expires_at <= now:
                del self._sessions[token]
                return None
            session.expires_at = now + SESSION_TIMEOUT_SECONDS
            return session

    def expire_all(self) -> None:
        with self._lock:
            self._sessions.clear()


@dataclass(frozen=True)
class TokenReply:
    status: int
    payload: dict[str, Any]


def oauth_error(status: int, error: str, description: str) -> TokenReply:
    return TokenReply(status, {"error": error, "error_description": description})


class TokenEndpoint:
    """Answers /services/oauth2/token for one org and connected app."""

    def __init__(
        self,
        credentials: SalesforceSandboxCredentials,
        sessions: SessionStore,
        instance_url: str,
        jwt_users: Mapping[str, str],
        community_urls: Sequence[str] = (),
    ) -> None:
        """`jwt_users` maps the usernames pre-authorized for the JWT bearer flow to their user ids;
        `community_urls` are the org's Experience Cloud site URLs, also valid JWT audiences."""
        self.credentials = credentials
        self.jwt_users = dict(jwt_users)
        self.sessions = sessions
        self.instance_url = instance_url
        certificate = x509.load_pem_x509_certificate(credentials.jwt_certificate_pem.encode())
        self._public_key = certificate.public_key()
        self.community_urls = community_urls

    @property
    def community_urls(self) -> tuple[str, ...]:
        """The Experience Cloud site URLs accepted as JWT audiences besides login and test."""
        return self._community_urls

    @community_urls.setter
    def community_urls(self, urls: Sequence[str]) -> None:
        self._community_urls = tuple(checked_community_url(url) for url in urls)

    @property
    def audiences(self) -> frozenset[str]:
        return frozenset({*LOGIN_AUDIENCES, *self._community_urls})

    def handle(self, method: str, headers: Mapping[str, str], body: bytes) -> TokenReply:
        if method != "POST":
            return oauth_error(400, "invalid_request", "must use HTTP POST")
        form = {key: values[0] for key, values in parse_qs(body.decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type", "")
        if grant_type == CLIENT_CREDENTIALS_GRANT:
            return self.client_credentials(headers, form)
        if grant_type == JWT_BEARER_GRANT:
            return self.jwt_bearer(form)
        return oauth_error(400, "unsupported_grant_type", "grant type not supported")

    def client_credentials(self, headers: Mapping[str, str], form: dict[str, str]) -> TokenReply:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = headers.get("Authorization", "")
        if authorization.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return oauth_error(401, "invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        if not client_id or not hmac.compare_digest(client_id, self.credentials.client_id):
            return oauth_error(400, "invalid_client_id", "client identifier invalid")
        if not client_secret or not hmac.compare_digest(client_secret, self.credentials.client_secret):
            return oauth_error(401, "invalid_client", "invalid client credentials")
        return self.success(self.credentials.integration_user_id)

    def jwt_bearer(self, form: dict[str, str]) -> TokenReply:
        assertion = form.get("assertion", "")
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return oauth_error(400, "invalid_grant", "invalid assertion")
        if header.get("alg") != "RS256":
            return oauth_error(400, "invalid_grant", "invalid assertion")
        if unverified.get("iss") != self.credentials.client_id:
            return oauth_error(400, "invalid_client_id", "client identifier invalid")
        try:
            claims = jwt.decode(
                assertion,
                self._public_key,  # type: ignore[arg-type]
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iss": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return oauth_error(400, "invalid_grant", "invalid assertion")
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(item, str) and item.rstrip("/") in self.audiences for item in audiences):
            return oauth_error(400, "invalid_grant", "audience is invalid")
        try:
            expires = int(claims["exp"])
        except (KeyError, TypeError, ValueError):
            return oauth_error(400, "invalid_grant", "invalid assertion")
        if expires <= time.time():
            return oauth_error(400, "invalid_grant", "expired authorization code")
        user_id = self.jwt_users.get(str(claims.get("sub")))
        if user_id is None:
            return oauth_error(400, "invalid_grant", "user hasn't approved this consumer")
        return self.success(user_id)

    def success(self, user_id: str) -> TokenReply:
        session = self.sessions.issue(user_id, self.credentials.client_id)
        issued_at = str(int(time.time() * 1000))
        identity_url = f"{self.instance_url}/id/{self.credentials.org_id}/{user_id}"
        signature = base64.b64encode(
            hmac.new(
                self.credentials.client_secret.encode(), (identity_url + issued_at).encode(), hashlib.sha256
            ).digest()
        ).decode()
        return TokenReply(
            200,
            {
                "access_token": session.token,
                "signature": signature,
                "scope": "api",
                "instance_url": self.instance_url,
                "id": identity_url,
                "token_type": "Bearer",
                "issued_at": issued_at,
            },
        )


def checked_community_url(url: str) -> str:
    """An Experience Cloud site URL (https, with the site's path prefix if any), without a trailing slash."""
    parts = urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme != "https" or not parts.netloc or parts.query or parts.fragment:
        raise ValueError(f"a community URL must be an https URL such as https://acme.my.site.com: {url!r}")
    return url.rstrip("/")


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
