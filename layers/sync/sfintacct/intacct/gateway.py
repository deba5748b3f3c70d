"""Sending functions to the gateway: authentication, one request per attempt, retries, one re-login.

`IntacctGateway.execute` runs a list of functions in one operation and returns their results in order.
It raises for whatever stops the request as a whole (network, HTTP, control or sign-in failures);
function failures stay in the results for the caller to judge (classify.first_failure).

- Sessions: getAPISession alone in its own request with login auth, then session auth at the endpoint
  it returned. Sessions are cached (session.SESSIONS) and dropped a little before they time out. If
  Intacct refuses a session, the gateway signs in again once and repeats the request (nothing was
  executed, so repeating is safe).
- Retries: transient failures are retried inside the retry budget. Writes go out with uniqueid=true
  and the same control ids on every attempt, so a repeat of something that did get applied is refused
  (AlreadyApplied) instead of applied twice. A write whose outcome is unknown is never repeated here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sfintacct.intacct.classify import (
    error_for_authentication_failure,
    error_for_control_failure,
    error_for_http_status,
    error_for_result,
)
from sfintacct.intacct.errors import (
    AuthenticationFailed,
    IntacctProtocolError,
    IntacctRequestError,
    OutcomeUnknown,
    TransientIntacctError,
)
from sfintacct.intacct.functions import get_api_session
from sfintacct.intacct.request import (
    Authentication,
    IntacctFunction,
    LoginAuthentication,
    SessionAuthentication,
    build_request,
    request_control_id,
)
from sfintacct.intacct.response import SUCCESS, FunctionResult, GatewayResponse, parse_response
from sfintacct.intacct.retry import RetryPolicy, RetryState
from sfintacct.intacct.session import ApiSession, SessionCache, session_from_result
from sfintacct.intacct.settings import IntacctSettings
from sfintacct.intacct.transport import HttpAnswer, HttpTransport

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Target:
    """Where and how to send the next attempt; `session` is None for login auth."""

    url: str
    authentication: Authentication
    session: ApiSession | None


class IntacctGateway:
    """Runs functions against one Intacct company (see the module doc)."""

    def __init__(
        self,
        settings: IntacctSettings,
        transport: HttpTransport,
        retry: RetryPolicy,
        sessions: SessionCache,
        now: Callable[[], datetime],
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.retry = retry
        self.sessions = sessions
        self.now = now

    def execute(
        self, functions: Sequence[IntacctFunction], *, transaction: bool = False
    ) -> list[FunctionResult]:
        """Run `functions` in one operation; their results in the same order.

        Functions whose result failed transiently are sent again (all of them under transaction=true,
        where everything was rolled back); the others keep their first result.
        """
        all_functions = list(functions)
        check_batch(all_functions)
        attempt = self.retry.start()
        settled: dict[str, FunctionResult] = {}
        pending = all_functions
        signed_in_again = False
        while pending:
            target = self._target(attempt)
            try:
                response = self._exchange(target, pending, transaction=transaction)
            except AuthenticationFailed:
                if target.session is None or signed_in_again:
                    raise
                signed_in_again = True
                logger.info("Intacct refused the cached API session; signing in again once")
                self.sessions.discard(self.settings.session_key, target.session)
                continue
            except TransientIntacctError as error:
                attempt.backoff_or_raise(error)
                continue
            results = match_results(response, pending)
            transient = [
                failure
                for result in results
                if isinstance(failure := error_for_result(result), TransientIntacctError)
            ]
            retry_ids = {failure.control_id for failure in transient}
            if retry_ids and transaction:
                settled.clear()
                pending = all_functions
            else:
                settled.update(
                    {result.control_id: result for result in results if result.control_id not in retry_ids}
                )
                pending = [function for function in pending if function.control_id in retry_ids]
            if pending:
                attempt.backoff_or_raise(transient[0])
        return [settled[function.control_id] for function in all_functions]

    # ------------------------------------------------------------------ authentication

    def login(self) -> LoginAuthentication:
        settings = self.settings
        return LoginAuthentication(
            user_id=settings.user_id,
            company_id=settings.company_id,
            password=settings.user_password,
            location_id=settings.entity_id,
        )

    def _target(self, attempt: RetryState) -> _Target:
        if not self.settings.use_sessions:
            return _Target(self.settings.endpoint_url, self.login(), None)
        session = self.sessions.get(self.settings.session_key, self.now())
        if session is None:
            session = self.open_session(attempt)
        return _Target(session.endpoint, SessionAuthentication(session.session_id), session)

    def open_session(self, attempt: RetryState | None = None) -> ApiSession:
        """getAPISession in a request of its own (login auth); the session is cached and returned.

        getAPISession changes nothing, so every transient failure is retried, 524 included.
        """
        attempt = attempt or self.retry.start()
        function = get_api_session()
        target = _Target(self.settings.endpoint_url, self.login(), None)
        while True:
            try:
                response = self._exchange(target, [function], transaction=False)
                result = match_results(response, [function])[0]
                error = error_for_result(result)
                if error is not None:
                    raise error
            except TransientIntacctError as error:
                attempt.backoff_or_raise(error)
                continue
            session = session_from_result(
                result, response.authentication, self.settings.endpoint_url, self.now()
            )
            self.sessions.put(self.settings.session_key, session)
            logger.info("Opened an Intacct API session (entity %r)", session.location_id or None)
            return session

    # ------------------------------------------------------------------ one HTTP exchange

    def _exchange(
        self, target: _Target, functions: Sequence[IntacctFunction], *, transaction: bool
    ) -> GatewayResponse:
        """Send one request and check the control and authentication levels of the answer."""
        writes = functions[0].writes
        control_ids = [function.control_id for function in functions]
        request_id = request_control_id(functions)
        body = build_request(
            sender_id=self.settings.sender_id,
            sender_password=self.settings.sender_password,
            authentication=target.authentication,
            functions=functions,
            unique_id=writes,
            transaction=transaction,
        )
        started = time.monotonic()
        try:
            answer = self.transport.post(target.url, body, writes=writes, control_ids=control_ids)
        except Exception as error:
            log_exchange(functions, request_id, None, started, type(error).__name__)
            raise
        log_exchange(functions, request_id, answer.status, started, None)
        response = read_answer(answer, writes=writes, control_ids=control_ids)
        if response.control.status != SUCCESS:
            raise error_for_control_failure(response.errors, answer.status)
        assert response.authentication is not None  # parse_response requires it when control succeeded
        if response.authentication.status != SUCCESS:
            raise error_for_authentication_failure(response.errors, answer.status)
        if target.session is not None:
            self.sessions.extend(
                self.settings.session_key, target.session, response.authentication, self.now()
            )
        return response


def check_batch(functions: Sequence[IntacctFunction]) -> None:
    """A request holds one or more functions, all reads or all writes, with distinct control ids."""
    if not functions:
        raise IntacctRequestError("Nothing to execute: no functions given")
    if len({function.writes for function in functions}) > 1:
        raise IntacctRequestError("Reads and writes cannot share a request (writes need uniqueid=true)")
    control_ids = [function.control_id for function in functions]
    if len(set(control_ids)) != len(control_ids):
        raise IntacctRequestError("Function control ids must be unique within a request")


def read_answer(answer: HttpAnswer, *, writes: bool, control_ids: Sequence[str]) -> GatewayResponse:
    """The parsed response, or the error the HTTP status or an unreadable body stands for."""
    response: GatewayResponse | None = None
    parse_error: IntacctProtocolError | None = None
    if answer.has_xml_body:
        try:
            response = parse_response(answer.body)
        except IntacctProtocolError as error:
            parse_error = error
    http_error = error_for_http_status(
        answer.status,
        writes=writes,
        control_ids=control_ids,
        has_xml_body=response is not None,
        retry_after=answer.retry_after,
        errors=response.errors if response is not None else (),
    )
    if http_error is not None:
        raise http_error
    if parse_error is not None:
        raise unreadable(parse_error, writes=writes and answer.status < 300, control_ids=control_ids)
    if response is None:
        raise unreadable(
            IntacctProtocolError(
                f"Intacct answered HTTP {answer.status} with a non-XML body "
                f"({answer.content_type or 'no content type'})"
            ),
            writes=writes and answer.status < 300,
            control_ids=control_ids,
        )
    return response


def unreadable(error: IntacctProtocolError, *, writes: bool, control_ids: Sequence[str]) -> Exception:
    """A protocol error, or OutcomeUnknown for a write whose (2xx) answer could not be read."""
    if not writes:
        return error
    outcome = OutcomeUnknown(
        f"The answer to a write could not be read ({error.message}); the outcome is unknown",
        control_ids=control_ids,
        http_status=error.http_status,
    )
    outcome.__cause__ = error
    return outcome


def match_results(response: GatewayResponse, functions: Sequence[IntacctFunction]) -> list[FunctionResult]:
    """The results in the order of `functions`, matched by control id."""
    by_control_id: dict[str, FunctionResult] = {}
    for result in response.results:
        if result.control_id in by_control_id:
            raise IntacctProtocolError(f"The response holds two results for controlid {result.control_id}")
        by_control_id[result.control_id] = result
    missing = [function.control_id for function in functions if function.control_id not in by_control_id]
    if missing:
        error = IntacctProtocolError(f"The response has no result for controlid(s) {', '.join(missing)}")
        raise unreadable(error, writes=functions[0].writes, control_ids=missing)
    return [by_control_id[function.control_id] for function in functions]


def log_exchange(
    functions: Sequence[IntacctFunction],
    request_id: str,
    status: int | None,
    started: float,
    failure: str | None,
) -> None:
    """One log line per HTTP exchange: functions, control ids, status and duration; never bodies."""
    logger.info(
        "Intacct request %s [%s] -> %s in %.0f ms",
        request_id,
        ", ".join(f"{function.label}#{function.control_id}" for function in functions),
        status if failure is None else failure,
        (time.monotonic() - started) * 1000,
    )
