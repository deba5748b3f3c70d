"""Every response layer, from fixture files: control, authentication and results, errors and hostile XML."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from intacct_fakes import fixture_bytes

from sfintacct.intacct import (
    AlreadyApplied,
    AuthenticationFailed,
    ControlFailure,
    DuplicateRecord,
    ErrorDetail,
    FunctionFailed,
    HostileXmlError,
    IntacctProtocolError,
    IntacctRateLimited,
    IntacctUnavailable,
    OutcomeUnknown,
    error_for_result,
    first_failure,
)
from sfintacct.intacct.classify import (
    error_for_authentication_failure,
    error_for_control_failure,
    error_for_http_status,
)
from sfintacct.intacct.gateway import read_answer
from sfintacct.intacct.response import FunctionResult, parse_response
from sfintacct.intacct.transport import HttpAnswer

XML = 'text/xml; encoding="UTF-8"'


def answer(
    name: str, status: int = 200, content_type: str = XML, retry_after: float | None = None
) -> HttpAnswer:
    return HttpAnswer(
        status=status, content_type=content_type, body=fixture_bytes(name), retry_after=retry_after
    )


# ---------------------------------------------------------------------------- success shapes


def test_session_response_parses_all_three_levels() -> None:
    response = parse_response(fixture_bytes("session_success.xml"))
    assert response.control.status == "success"
    assert response.control.dtd_version == "3.0"
    assert response.authentication is not None
    assert response.authentication.status == "success"
    assert response.authentication.session_timeout == datetime(2026, 11, 28, 17, 0, tzinfo=UTC)
    assert response.authentication.session_timestamp == datetime(2026, 11, 28, 16, 0, tzinfo=UTC)
    [result] = response.results
    assert (result.status, result.function, result.control_id) == (
        "success",
        "getAPISession",
        "getAPISession",
    )
    assert result.records()[0]["sessionid"] == "fixture-session-id.."
    assert error_for_result(result) is None


def test_generic_create_result_carries_recordno_and_id() -> None:
    [result] = parse_response(fixture_bytes("create_customer_success.xml")).results
    assert result.data_attribute("listtype") == "objects"
    assert result.records() == [{"RECORDNO": "8346", "CUSTOMERID": "C-00042"}]


def test_legacy_create_result_carries_the_key() -> None:
    [result] = parse_response(fixture_bytes("create_sotransaction_success.xml")).results
    assert result.key == "Sales Order-SO0007"
    assert result.data is None


def test_read_by_query_records_keep_nested_groups_and_entities_decoded() -> None:
    [result] = parse_response(fixture_bytes("read_by_query_customers.xml")).results
    assert result.data_number("totalcount") == 3
    assert result.data_number("numremaining") == 1
    assert result.data_attribute("resultId") == "7765623332WU1hh8CoA4QAAHxI9i8AAAAA5"
    first, second = result.records()
    assert first["NAME"] == "Jane's Deli & Café"
    assert first["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Lyon"
    assert first["SALESFORCE_ID"] == "001ABCDEFGHIJKLMNO"
    assert second["SALESFORCE_ID"] == ""


# ---------------------------------------------------------------------------- control level


def test_http_401_with_xml_body_is_parsed_as_a_control_failure() -> None:
    response = read_answer(answer("control_failure_sender.xml", status=401), writes=False, control_ids=["x"])
    assert response.control.status == "failure"
    assert response.authentication is None
    assert response.errors[0].errorno == "XMLGW_JPP0002"
    assert response.errors[0].description == "Sign-in information is incorrect. Please check your request."


def test_schema_error_is_a_control_failure_with_url_decoded_detail() -> None:
    response = parse_response(fixture_bytes("control_failure_schema.xml"))
    assert response.control.status == "failure"
    [error] = response.errors
    assert error.errorno == "XL03000003"
    assert error.description2.endswith("[Support ID: aB3dE~Z9xYw]")


def test_rate_limit_429_body_is_read_and_classified_transient() -> None:
    with pytest.raises(IntacctRateLimited) as raised:
        read_answer(answer("rate_limited_429.xml", status=429, retry_after=3), writes=True, control_ids=["x"])
    assert raised.value.transient is True
    assert raised.value.errorno == "GW-0010"
    assert raised.value.retry_after == 3
    assert raised.value.http_status == 429


def test_offline_503_is_transient_and_keeps_the_intacct_error() -> None:
    with pytest.raises(IntacctUnavailable) as raised:
        read_answer(answer("offline_503.xml", status=503), writes=True, control_ids=["x"])
    assert raised.value.description == "The Service is Temporarily Off-line"
    assert raised.value.transient is True


# ---------------------------------------------------------------------------- authentication level


def test_authentication_failure_has_no_results_and_carries_the_sign_in_error() -> None:
    response = parse_response(fixture_bytes("auth_failure_login.xml"))
    assert response.control.status == "success"
    assert response.authentication is not None
    assert response.authentication.status == "failure"
    assert response.results == ()
    assert response.errors[0].errorno == "XL03000006"


def test_expired_session_is_an_authentication_failure() -> None:
    response = parse_response(fixture_bytes("auth_failure_session_expired.xml"))
    assert response.authentication is not None
    assert response.authentication.status == "failure"
    assert response.errors[0].description2 == "The API session is invalid or has expired"


# ---------------------------------------------------------------------------- result level


def test_function_failure_is_permanent_with_intacct_details() -> None:
    [result] = parse_response(fixture_bytes("function_failure_invalid_item.xml")).results
    error = error_for_result(result)
    assert type(error) is FunctionFailed
    assert error.transient is False
    assert error.errorno == "BL01001973"
    assert error.description2 == "Invalid Item NOPE-1 on line 2."
    assert error.correction == "Use an existing item ID."
    assert error.control_id == "so-006Ab-v1"
    assert error.function == "create_sotransaction"
    assert "Invalid Item NOPE-1" in str(error)


def test_aborted_transaction_raises_the_failing_functions_error_not_the_rollback_notice() -> None:
    results = parse_response(fixture_bytes("transaction_rolled_back.xml")).results
    assert [result.status for result in results] == ["aborted", "failure", "aborted"]
    error = first_failure(results)
    assert isinstance(error, FunctionFailed)
    assert error.control_id == "batch-2"
    assert error.errorno == "BL01001973"
    assert error.description2 == "Invalid term 'N45' specified."
    assert [detail.errorno for detail in error.errors] == ["BL01001973", "XL03000009"]
    aborted = error_for_result(results[0])
    assert isinstance(aborted, FunctionFailed)
    assert aborted.errorno == "XL03000009"
    assert "aborted" in str(aborted)


def test_repeated_control_id_under_uniqueid_is_already_applied() -> None:
    [result] = parse_response(fixture_bytes("duplicate_controlid.xml")).results
    error = error_for_result(result)
    assert isinstance(error, AlreadyApplied)
    assert error.control_id == "so-006Ab-v1"
    assert not isinstance(error, FunctionFailed)


def failed_result(control_id: str, *errors: ErrorDetail) -> FunctionResult:
    return FunctionResult("failure", "create_sotransaction", control_id, errors=errors)


def test_an_error_quoting_the_functions_own_control_id_in_other_words_is_already_applied() -> None:
    """The refusal of a repeated control id is not documented: its errorno and wording may differ."""
    control_id = "order-0065g00000Bq3RTAAZ-0"
    error = error_for_result(
        failed_result(
            control_id,
            ErrorDetail("XL03000012", "Duplicate request", f"Control ID {control_id} was used before."),
        )
    )
    assert isinstance(error, AlreadyApplied)
    assert error.control_id == control_id


@pytest.mark.parametrize(
    ("control_id", "detail"),
    [
        ("order-0065g00000Bq3RTAAZ-0", ErrorDetail("BL01001973", "", "Unable to complete the request.")),
        (
            "order-0065g00000Bq3RTAAZ-0",
            ErrorDetail("BL01001973", "", "Reference order-0065g00000Bq3RTAAZ-01 is bad"),
        ),
        ("so-1", ErrorDetail("BL01001973", "", "Invalid quantity on line so-1 of 2.")),
    ],
    ids=["generic failure", "a longer word", "too short to tell"],
)
def test_a_failure_that_does_not_quote_the_control_id_as_a_word_is_not_already_applied(
    control_id: str, detail: ErrorDetail
) -> None:
    error = error_for_result(failed_result(control_id, detail))
    assert isinstance(error, FunctionFailed)
    assert not isinstance(error, AlreadyApplied)


def test_duplicate_customer_is_duplicate_record_with_additional_info() -> None:
    [result] = parse_response(fixture_bytes("duplicate_customer.xml")).results
    error = error_for_result(result)
    assert isinstance(error, DuplicateRecord)
    assert error.errorno == "BL34000061"
    assert error.correction == "Use a unique value instead."
    assert error.description2 == (
        "Another Customer with the given value(s) C-00042 already exists "
        "[Support ID: d3DJI~ZEckUDEkV9t5KUU5mpPrrQAAAAk]"
    )
    primary = error.primary_error
    assert primary is not None
    assert (primary.error_id, primary.category, primary.message_id) == (
        "AR-0117",
        "Duplication Prevention",
        "IA.ANOTHER_RECORD_WITH_VALUE_EXISTS",
    )
    assert error.errors[1].description2 == "Could not create Customer record!"


# ---------------------------------------------------------------------------- transient texts in 200 bodies


def test_rate_limit_text_in_a_200_control_failure_is_transient() -> None:
    response = parse_response(fixture_bytes("rate_limit_in_200.xml"))
    error = error_for_control_failure(response.errors, 200)
    assert isinstance(error, IntacctRateLimited)


def test_offline_text_in_an_authentication_failure_is_transient_not_a_sign_in_failure() -> None:
    response = parse_response(fixture_bytes("offline_in_200.xml"))
    error = error_for_authentication_failure(response.errors, 200)
    assert isinstance(error, IntacctUnavailable)
    assert not isinstance(error, AuthenticationFailed)


def test_plain_control_failure_is_permanent() -> None:
    response = parse_response(fixture_bytes("control_failure_sender.xml"))
    error = error_for_control_failure(response.errors, 401)
    assert isinstance(error, ControlFailure)
    assert error.transient is False


# ---------------------------------------------------------------------------- broken and hostile bodies


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("malformed_truncated.xml", "not well-formed"),
        ("missing_control.xml", "no <control>"),
        ("missing_operation.xml", "no <operation>"),
        ("missing_authentication.xml", "no <authentication>"),
        ("missing_result_status.xml", "no <status>"),
    ],
)
def test_broken_responses_raise_a_protocol_error(name: str, problem: str) -> None:
    with pytest.raises(IntacctProtocolError, match=problem):
        parse_response(fixture_bytes(name))


@pytest.mark.parametrize("name", ["billion_laughs.xml", "external_entity.xml"])
def test_hostile_xml_is_refused_without_expanding_it(name: str) -> None:
    with pytest.raises(HostileXmlError, match="forbidden XML"):
        parse_response(fixture_bytes(name))


def test_unreadable_answer_to_a_read_is_a_protocol_error() -> None:
    with pytest.raises(IntacctProtocolError):
        read_answer(answer("malformed_truncated.xml"), writes=False, control_ids=["q"])


def test_unreadable_answer_to_a_write_means_the_outcome_is_unknown() -> None:
    with pytest.raises(OutcomeUnknown) as raised:
        read_answer(answer("billion_laughs.xml"), writes=True, control_ids=["so-1"])
    assert raised.value.control_ids == ("so-1",)
    assert isinstance(raised.value.__cause__, HostileXmlError)


def test_html_instead_of_xml_on_200_is_a_protocol_error() -> None:
    html = HttpAnswer(status=200, content_type="text/html", body=b"<html><body>maintenance</body></html>")
    with pytest.raises(IntacctProtocolError, match="non-XML"):
        read_answer(html, writes=False, control_ids=["q"])


# ---------------------------------------------------------------------------- HTTP statuses alone


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_are_transient_for_reads_and_writes(status: int) -> None:
    for writes in (False, True):
        error = error_for_http_status(status, writes=writes, control_ids=["c"], has_xml_body=False)
        assert isinstance(error, IntacctUnavailable)


def test_524_is_outcome_unknown_for_writes_and_transient_for_reads() -> None:
    write_error = error_for_http_status(524, writes=True, control_ids=["so-1"], has_xml_body=False)
    assert isinstance(write_error, OutcomeUnknown)
    assert write_error.control_ids == ("so-1",)
    read_error = error_for_http_status(524, writes=False, control_ids=["q"], has_xml_body=False)
    assert isinstance(read_error, IntacctUnavailable)


def test_4xx_without_xml_is_a_protocol_error_and_with_xml_the_body_decides() -> None:
    assert isinstance(
        error_for_http_status(404, writes=False, control_ids=["q"], has_xml_body=False), IntacctProtocolError
    )
    assert error_for_http_status(401, writes=False, control_ids=["q"], has_xml_body=True) is None
    assert isinstance(
        error_for_http_status(429, writes=False, control_ids=["q"], has_xml_body=False), IntacctRateLimited
    )
