"""Sage Intacct XML gateway client (dtdversion 3.0) over httpx.

Modules, one job each:

    settings   IntacctSettings and loading them from Secrets Manager + environment
    errors     the error types (transient, permanent, OutcomeUnknown, AlreadyApplied)
    request    building request documents (control block, operation, authentication)
    functions  getAPISession, create, update, query, readByQuery, readMore
    query      query filters and readByQuery literals
    writers    CUSTOMER and create_sotransaction XML from the input models
    response   parsing responses with defusedxml
    classify   what a failure means (decided once, here)
    transport  HTTP with httpx; network failures sorted by "was it sent?"
    retry      jittered exponential backoff inside a time budget
    session    API sessions and the module-level session cache
    gateway    one logical call: authentication, retries, one re-login
    models     pydantic inputs and typed records
    client     IntacctClient and its operations
"""

from sfintacct.intacct.classify import error_for_result, first_failure
from sfintacct.intacct.client import IntacctClient
from sfintacct.intacct.errors import (
    AlreadyApplied,
    AuthenticationFailed,
    ControlFailure,
    DuplicateRecord,
    ErrorDetail,
    FunctionFailed,
    HostileXmlError,
    IntacctError,
    IntacctNetworkError,
    IntacctProtocolError,
    IntacctRateLimited,
    IntacctRequestError,
    IntacctSettingsError,
    IntacctUnavailable,
    OutcomeUnknown,
    PermanentIntacctError,
    PermissionDenied,
    RecordNotFound,
    TransientIntacctError,
)
from sfintacct.intacct.functions import create, query, read_by_query, read_more, update, write_function
from sfintacct.intacct.models import (
    Contact,
    Customer,
    CustomerRef,
    CustomerUpdate,
    Item,
    MailAddress,
    NewCustomer,
    SalesDocument,
    SalesDocumentLine,
    SalesTransaction,
    SalesTransactionLine,
)
from sfintacct.intacct.query import (
    Filter,
    all_of,
    any_of,
    equal_to,
    equals_clause,
    greater_than_or_equal_to,
    in_list,
    is_not_null,
    is_null,
    less_than_or_equal_to,
    like,
    not_equal_to,
    quote_query_value,
)
from sfintacct.intacct.request import IntacctFunction
from sfintacct.intacct.response import FunctionResult
from sfintacct.intacct.session import SESSIONS, SessionCache
from sfintacct.intacct.settings import IntacctSettings, load_intacct_settings, settings_from_sources
from sfintacct.intacct.writers import customer_update_element, new_customer_element, sotransaction_element

__all__ = [
    "SESSIONS",
    "AlreadyApplied",
    "AuthenticationFailed",
    "Contact",
    "ControlFailure",
    "Customer",
    "CustomerRef",
    "CustomerUpdate",
    "DuplicateRecord",
    "ErrorDetail",
    "Filter",
    "FunctionFailed",
    "FunctionResult",
    "HostileXmlError",
    "IntacctClient",
    "IntacctError",
    "IntacctFunction",
    "IntacctNetworkError",
    "IntacctProtocolError",
    "IntacctRateLimited",
    "IntacctRequestError",
    "IntacctSettings",
    "IntacctSettingsError",
    "IntacctUnavailable",
    "Item",
    "MailAddress",
    "NewCustomer",
    "OutcomeUnknown",
    "PermanentIntacctError",
    "PermissionDenied",
    "RecordNotFound",
    "SalesDocument",
    "SalesDocumentLine",
    "SalesTransaction",
    "SalesTransactionLine",
    "SessionCache",
    "TransientIntacctError",
    "all_of",
    "any_of",
    "create",
    "customer_update_element",
    "equal_to",
    "equals_clause",
    "error_for_result",
    "first_failure",
    "greater_than_or_equal_to",
    "in_list",
    "is_not_null",
    "is_null",
    "less_than_or_equal_to",
    "like",
    "load_intacct_settings",
    "new_customer_element",
    "not_equal_to",
    "query",
    "quote_query_value",
    "read_by_query",
    "read_more",
    "settings_from_sources",
    "sotransaction_element",
    "update",
    "write_function",
]
