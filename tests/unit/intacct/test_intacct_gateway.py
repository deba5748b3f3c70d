"""Retries, OutcomeUnknown and sessions, over httpx.MockTransport with a fake clock (no real sleeping)."""

from __future__ import annotations

import logging

import httpx
import pytest
from intacct_fakes import (
    FIXTURE_SESSION_ID,
    LOGIN_URL,
    SENDER_PASSWORD,
    SESSION_URL,
    USER_PASSWORD,
    FakeClock,
    FakeIntacct,
    SeenRequest,
    envelope,
    errors_xml,
    fail_all,
    fixture_reply,
    html_reply,
    make_client,
    network_failure,
    ok,
    result_xml,
    session_reply,
    xml_reply,
)

from sfintacct.intacct import (
    AlreadyApplied,
    AuthenticationFailed,
    ControlFailure,
    FunctionFailed,
    IntacctFunction,
    IntacctNetworkError,
    IntacctProtocolError,
    IntacctRequestError,
    IntacctUnavailable,
    NewCustomer,
    OutcomeUnknown,
    SessionCache,
    create,
    query,
)
from sfintacct.intacct.writers import new_customer_element

CREATED = (
    '<data listtype="objects" count="1">'
    "<customer><RECORDNO>7</RECORDNO><CUSTOMERID>C-7</CUSTOMERID></customer></data>"
)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def write(control_id: str = "cust-001Ab-v1") -> IntacctFunction:
    return create([new_customer_element(NewCustomer(name="Acme"))], control_id=control_id)


def read() -> IntacctFunction:
    return query("ITEM", ["ITEMID"])


# ---------------------------------------------------------------------------- sessions


def test_session_is_opened_alone_with_login_then_used_at_its_endpoint(clock: FakeClock) -> None:
    fake = FakeIntacct([fixture_reply("session_success.xml"), ok(CREATED)])
    with make_client(fake, clock) as client:
        client.run(write())
    session_request, call = fake.requests
    assert session_request.url == LOGIN_URL
    assert session_request.function_names == ["getAPISession"]
    assert session_request.unique_id == "false"
    login = session_request.login
    assert login is not None
    assert login.findtext("password") == USER_PASSWORD
    assert call.url == SESSION_URL
    assert call.session_id == FIXTURE_SESSION_ID
    assert call.login is None
    assert call.unique_id == "true"


def test_entity_is_sent_as_locationid_when_logging_in(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), ok()])
    with make_client(fake, clock, entity_id="UK") as client:
        client.run(read())
    login = fake.requests[0].login
    assert login is not None
    assert login.findtext("locationid") == "UK"


def test_session_is_reused_across_clients_sharing_the_cache(clock: FakeClock) -> None:
    sessions = SessionCache()
    fake = FakeIntacct([session_reply("s-1.."), ok(), ok()])
    with make_client(fake, clock, sessions) as first:
        first.run(read())
    with make_client(fake, clock, sessions) as second:  # a warm invocation: new client, same cache
        second.run(read())
    assert [seen.function_names for seen in fake.requests] == [["getAPISession"], ["query"], ["query"]]
    assert fake.requests[2].session_id == "s-1.."


def test_sessions_are_cached_per_company_entity_and_user(clock: FakeClock) -> None:
    sessions = SessionCache()
    fake = FakeIntacct([session_reply("us.."), ok(), session_reply("uk.."), ok()])
    with make_client(fake, clock, sessions, entity_id="US") as us_client:
        us_client.run(read())
    with make_client(fake, clock, sessions, entity_id="UK") as uk_client:
        uk_client.run(read())
    assert [seen.session_id for seen in fake.requests if seen.session_id] == ["us..", "uk.."]


def test_session_is_renewed_a_little_before_its_timeout(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply("s-1..", lifetime_seconds=600), ok(lifetime_seconds=600)])
    with make_client(fake, clock) as client:
        client.run(read())
        clock.advance(600 - 30)  # inside the safety margin (60 s for a 10 minute session)
        fake.add(session_reply("s-2..", lifetime_seconds=600), ok(lifetime_seconds=600))
        client.run(read())
    assert [seen.session_id for seen in fake.requests if seen.session_id] == ["s-1..", "s-2.."]


def test_every_call_pushes_the_session_timeout_forward(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply("s-1..", lifetime_seconds=600)])
    with make_client(fake, clock) as client:
        for _ in range(3):
            clock.advance(400)  # 1200 s in total: past the first timeout, but each call extended it
            fake.add(ok(lifetime_seconds=600))
            client.run(read())
    assert [seen.function_names for seen in fake.requests].count(["getAPISession"]) == 1


def test_refused_cached_session_signs_in_again_once_and_repeats_the_call(clock: FakeClock) -> None:
    sessions = SessionCache()
    fake = FakeIntacct(
        [
            session_reply("old.."),
            ok(),
            fixture_reply("auth_failure_session_expired.xml"),
            session_reply("new.."),
            ok(CREATED),
        ]
    )
    with make_client(fake, clock, sessions) as client:
        client.run(read())
        ref = client.create_customer(NewCustomer(name="Acme"), control_id="cust-1")
    assert ref.customer_id == "C-7"
    calls = [seen for seen in fake.requests if seen.function_names == ["create"]]
    assert [seen.session_id for seen in calls] == ["old..", "new.."]
    assert calls[0].body.replace(b"old..", b"new..") == calls[1].body  # same control ids, new session only
    assert clock.sleeps == []


def test_a_second_refusal_after_signing_in_again_is_raised(clock: FakeClock) -> None:
    fake = FakeIntacct(
        [
            session_reply("old.."),
            fixture_reply("auth_failure_session_expired.xml"),
            session_reply("new.."),
            fixture_reply("auth_failure_session_expired.xml"),
        ]
    )
    with make_client(fake, clock) as client, pytest.raises(AuthenticationFailed) as raised:
        client.run(read())
    assert raised.value.description2 == "The API session is invalid or has expired"
    assert [seen.function_names for seen in fake.requests].count(["getAPISession"]) == 2


def test_wrong_company_credentials_fail_at_sign_in_without_retrying(clock: FakeClock) -> None:
    fake = FakeIntacct([fixture_reply("auth_failure_login.xml")])
    with make_client(fake, clock) as client, pytest.raises(AuthenticationFailed, match="Sign-in information"):
        client.run(read())
    assert len(fake.requests) == 1


def test_wrong_sender_is_a_control_failure_from_the_401_body(clock: FakeClock) -> None:
    fake = FakeIntacct([fixture_reply("control_failure_sender.xml", status=401)])
    with make_client(fake, clock) as client, pytest.raises(ControlFailure) as raised:
        client.run(read())
    assert raised.value.errorno == "XMLGW_JPP0002"
    assert raised.value.http_status == 401
    assert len(fake.requests) == 1


def test_login_auth_on_every_call_when_sessions_are_off(clock: FakeClock) -> None:
    fake = FakeIntacct([ok(), ok()])
    with make_client(fake, clock, use_sessions=False) as client:
        client.run(read())
        client.run(read())
    assert all(seen.login is not None and seen.url == LOGIN_URL for seen in fake.requests)


def test_session_endpoint_must_be_https(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(endpoint="http://na1.intacct.example.test/ia/xml/xmlgw.phtml")])
    with make_client(fake, clock) as client, pytest.raises(IntacctProtocolError, match="https"):
        client.run(read())


# ---------------------------------------------------------------------------- retries


def test_5xx_on_a_write_is_retried_with_byte_identical_requests(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), html_reply(502), html_reply(503), ok(CREATED)])
    with make_client(fake, clock) as client:
        ref = client.create_customer(NewCustomer(name="Acme"), control_id="cust-1")
    assert ref.record_no == "7"
    attempts = fake.gateway_requests()
    assert len(attempts) == 3
    assert attempts[0].body == attempts[1].body == attempts[2].body
    assert attempts[0].unique_id == "true"
    assert clock.sleeps == [0.75, 1.5]  # equal jitter with a fixed random fraction of 0.5


def test_rate_limit_429_is_retried_honouring_retry_after(clock: FakeClock) -> None:
    fake = FakeIntacct(
        [
            session_reply(),
            fixture_reply("rate_limited_429.xml", status=429, headers={"Retry-After": "5"}),
            ok(),
        ]
    )
    with make_client(fake, clock) as client:
        client.run(read())
    assert clock.sleeps == [5.0]


def test_transient_failures_stop_after_max_attempts(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), *[html_reply(503) for _ in range(3)]])
    with make_client(fake, clock, max_attempts=3) as client, pytest.raises(IntacctUnavailable) as raised:
        client.run(read())
    assert raised.value.http_status == 503
    assert len(fake.gateway_requests()) == 3
    assert len(clock.sleeps) == 2


def test_transient_failures_stop_when_the_time_budget_is_spent(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), *[html_reply(500) for _ in range(10)]])
    client = make_client(fake, clock, max_attempts=10, retry_budget_seconds=5)
    with client, pytest.raises(IntacctUnavailable):
        client.run(read())
    assert sum(clock.sleeps) <= 5
    assert len(fake.gateway_requests()) == 3  # sleeps 0.75 + 1.5 fit, the next 3.0 would not


def test_offline_for_a_while_is_retried_inside_the_budget(clock: FakeClock) -> None:
    offline = [fixture_reply("offline_503.xml", status=503) for _ in range(3)]
    fake = FakeIntacct([session_reply(), *offline, ok()])
    with make_client(fake, clock) as client:
        client.run(read())
    assert len(fake.gateway_requests()) == 4


def test_524_on_a_write_raises_outcome_unknown_without_resending(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), html_reply(524)])
    with make_client(fake, clock) as client, pytest.raises(OutcomeUnknown) as raised:
        client.run(write("so-006Ab-v1"))
    assert raised.value.control_ids == ("so-006Ab-v1",)
    assert raised.value.http_status == 524
    assert len(fake.gateway_requests()) == 1
    assert clock.sleeps == []


def test_524_on_a_read_is_retried(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), html_reply(524), ok()])
    with make_client(fake, clock) as client:
        client.run(read())
    assert len(fake.gateway_requests()) == 2


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError, httpx.ReadError])
def test_lost_answer_to_a_write_is_outcome_unknown(
    clock: FakeClock, failure: type[httpx.TransportError]
) -> None:
    fake = FakeIntacct([session_reply(), network_failure(failure)])
    with make_client(fake, clock) as client, pytest.raises(OutcomeUnknown):
        client.run(write())
    assert len(fake.gateway_requests()) == 1


@pytest.mark.parametrize("failure", [httpx.ReadTimeout, httpx.RemoteProtocolError])
def test_lost_answer_to_a_read_is_retried(clock: FakeClock, failure: type[httpx.TransportError]) -> None:
    fake = FakeIntacct([session_reply(), network_failure(failure), ok()])
    with make_client(fake, clock) as client:
        client.run(read())
    assert len(fake.gateway_requests()) == 2


def test_connect_failure_on_a_write_is_retried_because_nothing_was_sent(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), network_failure(httpx.ConnectError), ok(CREATED)])
    with make_client(fake, clock) as client:
        client.run(write())
    assert len(fake.gateway_requests()) == 2


def test_connect_failures_end_as_a_network_error(clock: FakeClock) -> None:
    fake = FakeIntacct([network_failure(httpx.ConnectTimeout) for _ in range(2)])
    with make_client(fake, clock, max_attempts=2) as client, pytest.raises(IntacctNetworkError):
        client.run(read())


def test_getapisession_is_retried_on_524_because_it_changes_nothing(clock: FakeClock) -> None:
    fake = FakeIntacct([html_reply(524), session_reply(), ok()])
    with make_client(fake, clock) as client:
        client.run(read())
    assert [seen.function_names for seen in fake.requests] == [
        ["getAPISession"],
        ["getAPISession"],
        ["query"],
    ]


def test_rate_limit_text_in_a_200_body_is_retried(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("rate_limit_in_200.xml"), ok()])
    with make_client(fake, clock) as client:
        client.run(read())
    assert len(clock.sleeps) == 1


def test_permanent_function_failure_is_not_retried(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fail_all(("BL01001973", "Invalid Item NOPE on line 1."))])
    with make_client(fake, clock) as client, pytest.raises(FunctionFailed, match="Invalid Item NOPE"):
        client.run(write())
    assert len(fake.gateway_requests()) == 1


def test_transient_function_result_is_resent_alone_with_its_control_id(clock: FakeClock) -> None:
    def mixed(seen: SeenRequest) -> httpx.Response:
        return xml_reply(
            envelope(
                result_xml("success", "create", "a", CREATED)
                + result_xml(
                    "failure",
                    "create",
                    "b",
                    errors_xml(("XL03000010", "The Service is Temporarily Off-line")),
                )
            )
        )

    fake = FakeIntacct([session_reply(), mixed, ok(CREATED)])
    with make_client(fake, clock) as client:
        results = client.execute_checked([write("a"), write("b")])
    assert [result.control_id for result in results] == ["a", "b"]
    assert all(result.succeeded for result in results)
    assert fake.gateway_requests()[1].control_ids == ["b"]


def test_already_applied_write_is_reported_as_such(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("duplicate_controlid.xml")])
    with make_client(fake, clock) as client, pytest.raises(AlreadyApplied) as raised:
        client.run(write("so-006Ab-v1"))
    assert raised.value.control_id == "so-006Ab-v1"


def test_transaction_failure_raises_the_failing_function_error(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("transaction_rolled_back.xml")])
    functions = [write("batch-1"), write("batch-2"), write("batch-3")]
    with make_client(fake, clock) as client, pytest.raises(FunctionFailed) as raised:
        client.execute_checked(functions, transaction=True)
    assert raised.value.control_id == "batch-2"
    assert "Invalid term 'N45'" in str(raised.value)
    assert fake.gateway_requests()[0].transaction == "true"


def test_reads_and_writes_cannot_share_a_request(clock: FakeClock) -> None:
    fake = FakeIntacct([])
    with make_client(fake, clock) as client, pytest.raises(IntacctRequestError, match="Reads and writes"):
        client.execute([write(), read()])
    assert fake.requests == []


def test_missing_result_for_a_write_means_the_outcome_is_unknown(clock: FakeClock) -> None:
    fake = FakeIntacct([session_reply(), fixture_reply("create_sotransaction_success.xml")])
    with make_client(fake, clock) as client, pytest.raises(OutcomeUnknown) as raised:
        client.run(write("other-control-id"))
    assert raised.value.control_ids == ("other-control-id",)


# ---------------------------------------------------------------------------- secrets stay out


def test_logs_and_errors_never_carry_secrets_or_bodies(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake = FakeIntacct(
        [
            session_reply("secret-session.."),
            html_reply(502),
            fixture_reply("function_failure_invalid_item.xml"),
        ]
    )
    with make_client(fake, clock) as client, pytest.raises(FunctionFailed) as raised:
        client.run(write("so-006Ab-v1"))
    text = caplog.text + str(raised.value) + repr(client.settings)
    for secret in (SENDER_PASSWORD, USER_PASSWORD, "secret-session"):
        assert secret not in text
    assert "create:CUSTOMER#so-006Ab-v1" in caplog.text
    assert "<NAME>" not in caplog.text
