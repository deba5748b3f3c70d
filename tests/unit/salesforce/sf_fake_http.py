"""A fake Salesforce at the HTTP layer (a requests transport adapter) for the client's unit tests.

The fake issues access tokens, refuses unknown or expired ones with 401 INVALID_SESSION_ID like
Salesforce, and answers REST calls from replies the test queues per method and path.
"""

from __future__ import annotations

import base64
import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

LOGIN_URL = "https://acme.my.salesforce.com"
INSTANCE_URL = "https://acme.my.salesforce.com"
API = "/services/data/v62.0"
TOKEN_PATH = "/services/oauth2/token"

Reply = tuple[int, Any] | Exception


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: CaseInsensitiveDict[str]
    body: bytes
    timeout: Any
    verify: Any

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {key: values[0] for key, values in parse_qs(self.body.decode()).items()}


@dataclass
class FakeSalesforceHttp(BaseAdapter):
    """Answers the token endpoint by itself and REST calls from queued replies."""

    requests: list[RecordedRequest] = field(default_factory=list)
    replies: dict[tuple[str, str], deque[Reply]] = field(default_factory=dict)
    token_replies: deque[Reply] = field(default_factory=deque)
    valid_tokens: set[str] = field(default_factory=set)
    tokens_issued: int = 0

    def __post_init__(self) -> None:
        super().__init__()

    def reply(self, method: str, path: str, *replies: Reply) -> None:
        """Queue replies for `method path` (path without query string), used in order."""
        self.replies.setdefault((method, path), deque()).extend(replies)

    def expire_tokens(self) -> None:
        """Make every token issued so far invalid, like a session timeout."""
        self.valid_tokens.clear()

    def calls(self, method: str, path: str) -> list[RecordedRequest]:
        return [call for call in self.requests if call.method == method and call.path == path]

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        url = urlsplit(str(request.url))
        body = request.body or b""
        recorded = RecordedRequest(
            method=str(request.method),
            path=url.path,
            query=parse_qs(url.query),
            headers=CaseInsensitiveDict(request.headers),
            body=body if isinstance(body, bytes) else body.encode(),
            timeout=timeout,
            verify=verify,
        )
        self.requests.append(recorded)
        reply = self._answer(recorded)
        if isinstance(reply, Exception):
            raise reply
        status, payload = reply
        return _response(request, status, payload)

    def close(self) -> None:
        pass

    def _answer(self, call: RecordedRequest) -> Reply:
        if call.path == TOKEN_PATH:
            if self.token_replies:
                return self.token_replies.popleft()
            self.tokens_issued += 1
            token = f"00Dfake!token{self.tokens_issued}"
            self.valid_tokens.add(token)
            return 200, {"access_token": token, "instance_url": INSTANCE_URL, "token_type": "Bearer"}
        if call.headers.get("Authorization", "").removeprefix("Bearer ") not in self.valid_tokens:
            return 401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
        queued = self.replies.get((call.method, call.path))
        if not queued:
            return 404, [
                {"errorCode": "NOT_FOUND", "message": f"no reply queued for {call.method} {call.path}"}
            ]
        return queued.popleft()


def _response(request: requests.PreparedRequest, status: int, payload: Any) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.url = str(request.url)
    response.request = request
    response.encoding = "utf-8"
    if payload is None:
        response._content = b""
        response.headers = CaseInsensitiveDict()
    else:
        response._content = json.dumps(payload).encode()
        response.headers = CaseInsensitiveDict({"Content-Type": "application/json;charset=UTF-8"})
    return response


def basic_credentials(call: RecordedRequest) -> tuple[str, str]:
    """The user and password of a request's HTTP Basic Authorization header."""
    encoded = call.headers["Authorization"].removeprefix("Basic ")
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password
