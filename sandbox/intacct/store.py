"""The sandbox's company data: object definitions, seeded reference data, records, numbering and sessions.

Records are plain dicts of UPPERCASE field -> value, where a value is a string or, for nested groups such as
DISPLAYCONTACT, a dict of the same shape. Everything is held in memory; callers hold `SandboxState.lock`.
"""

from __future__ import annotations

import copy
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sandbox.intacct import transaction_definitions
from sandbox.intacct.faults import FaultState

Record = dict[str, Any]

DEFAULT_SESSION_SECONDS = 3600
DEFAULT_CUSTOM_FIELDS: dict[str, list[str]] = {
    "CUSTOMER": ["SALESFORCE_ID"],
    "SODOCUMENT": ["SALESFORCE_OPPORTUNITY_ID"],
}
MAX_RESULT_SETS = 200
# How a function whose control id already completed is refused under uniqueid=true (see gateway.py).
DUPLICATE_CONTROLID_ANSWERS = ("already_recorded", "other_wording", "generic_failure")

# Transaction definitions and their document number prefixes.
TRANSACTION_DEFINITIONS = {"Sales Order": "SO", "Sales Invoice": "INV", "Sales Quote": "SQ"}
TRANSACTION_STATES = ("Draft", "Pending", "Closed")
# The states converting a document to the next one in its workflow gives it (set through the admin API);
# such a document cannot be updated (https://developer.intacct.com/api/order-entry/order-entry-transactions/)
# and the sandbox does not let it be deleted either.
CONVERSION_STATES = ("In Progress", "Converted", "Partially Converted")
DEFAULT_TRANSACTION_STATE = "Pending"
# Which transaction definition converts to which (create_sotransaction with <createdfrom>): the
# workflow Sales Quote -> Sales Order -> Sales Invoice. Each company sets its own "convert to" lists
# (UNCERTAIN); the sandbox allows these two steps only.
CONVERTS_TO: dict[str, tuple[str, ...]] = {"Sales Quote": ("Sales Order",), "Sales Order": ("Sales Invoice",)}
# The transaction definition class whose documents post an AR invoice (SODOCUMENTPARAMS.DOCCLASS).
INVOICE_DOCCLASS = "Invoice"
BASE_CURRENCY = "USD"
CURRENCIES = ("USD", "EUR", "GBP")
TERM_DAYS = {"N15": 15, "N30": 30, "N60": 60, "Due on receipt": 0}

MAILADDRESS_FIELDS = (
    "ADDRESS1",
    "ADDRESS2",
    "ADDRESS3",
    "CITY",
    "STATE",
    "ZIP",
    "COUNTRY",
    "COUNTRYCODE",
    "ISOCOUNTRYCODE",
)
CONTACT_FIELDS = (
    "CONTACTNAME",
    "PRINTAS",
    "COMPANYNAME",
    "TAXABLE",
    "TAXGROUP",
    "PREFIX",
    "FIRSTNAME",
    "LASTNAME",
    "INITIAL",
    "PHONE1",
    "PHONE2",
    "CELLPHONE",
    "PAGER",
    "FAX",
    "EMAIL1",
    "EMAIL2",
    "URL1",
    "URL2",
    "MAILADDRESS",
)
# Nested groups: group field -> allowed child fields (MAILADDRESS is nested once more).
NESTED_GROUPS: dict[str, tuple[str, ...]] = {
    "DISPLAYCONTACT": CONTACT_FIELDS,
    "CONTACTINFO": ("CONTACTNAME",),
    "BILLTO": ("CONTACTNAME",),
    "SHIPTO": ("CONTACTNAME",),
    "MAILADDRESS": MAILADDRESS_FIELDS,
}


@dataclass(frozen=True)
class ObjectDefinition:
    """What the gateway knows about an object: its standard fields (in output order) and its name field."""

    name: str
    fields: tuple[str, ...]
    name_field: str | None
    writable_fields: frozenset[str] = frozenset()
    required_fields: frozenset[str] = frozenset()


CUSTOMER_WRITABLE_FIELDS = frozenset(
    {
        "CUSTOMERID",
        "NAME",
        "DISPLAYCONTACT",
        "STATUS",
        "ONETIME",
        "HIDEDISPLAYCONTACT",
        "CUSTTYPE",
        "CUSTREPID",
        "PARENTID",
        "GLGROUP",
        "TERRITORYID",
        "SUPDOCID",
        "TERMNAME",
        "OFFSETGLACCOUNTNO",
        "ARACCOUNT",
        "SHIPPINGMETHOD",
        "RESALENO",
        "TAXID",
        "CREDITLIMIT",
        "ONHOLD",
        "DELIVERY_OPTIONS",
        "CUSTMESSAGEID",
        "COMMENTS",
        "CURRENCY",
        "ADVBILLBY",
        "ADVBILLBYTYPE",
        "CONTACTINFO",
        "BILLTO",
        "SHIPTO",
        "OBJECTRESTRICTION",
        "RESTRICTEDLOCATIONS",
        "RESTRICTEDDEPARTMENTS",
    }
)

OBJECTS: dict[str, ObjectDefinition] = {
    "CUSTOMER": ObjectDefinition(
        "CUSTOMER",
        (
            "RECORDNO",
            "CUSTOMERID",
            "NAME",
            "ENTITY",
            "STATUS",
            "PARENTKEY",
            "PARENTID",
            "PARENTNAME",
            "TERMNAME",
            "CURRENCY",
            "CUSTTYPE",
            "CUSTREPID",
            "CUSTREPNAME",
            "TAXID",
            "CREDITLIMIT",
            "ONETIME",
            "ONHOLD",
            "HIDEDISPLAYCONTACT",
            "GLGRPKEY",
            "GLGROUP",
            "TERRITORYID",
            "SHIPPINGMETHOD",
            "RESALENO",
            "DELIVERY_OPTIONS",
            "COMMENTS",
            "OBJECTRESTRICTION",
            "TOTALDUE",
            "DISPLAYCONTACT",
            "CONTACTINFO",
            "BILLTO",
            "SHIPTO",
            "WHENCREATED",
            "WHENMODIFIED",
            "CREATEDBY",
            "MODIFIEDBY",
        ),
        "CUSTOMERID",
        CUSTOMER_WRITABLE_FIELDS,
        frozenset({"NAME", "DISPLAYCONTACT"}),
    ),
    "ITEM": ObjectDefinition(
        "ITEM",
        (
            "RECORDNO",
            "ITEMID",
            "NAME",
            "STATUS",
            "ITEMTYPE",
            "PRODUCTLINEID",
            "EXTENDED_DESCRIPTION",
            "BASEPRICE",
            "UOM",
            "TAXABLE",
            "GLGROUP",
            "MRR",
            "WHENCREATED",
            "WHENMODIFIED",
        ),
        "ITEMID",
    ),
    "SODOCUMENT": ObjectDefinition(
        "SODOCUMENT",
        (
            "RECORDNO",
            "DOCNO",
            "DOCID",
            "DOCPARID",
            "STATE",
            "CUSTVENDID",
            "CUSTVENDNAME",
            "WHENCREATED",
            "WHENPOSTED",
            "WHENDUE",
            "TERMNAME",
            "PONUMBER",
            "EXTERNALID",
            "MESSAGE",
            "CURRENCY",
            "BASECURR",
            "SUBTOTAL",
            "TOTAL",
            "CREATEDFROM",
            "PRRECORDKEY",
            "TRX_TOTALENTERED",
            "TRX_TOTALPAID",
            "TRX_TOTALDUE",
            "WHENMODIFIED",
        ),
        "DOCID",
    ),
    "SODOCUMENTENTRY": ObjectDefinition(
        "SODOCUMENTENTRY",
        (
            "RECORDNO",
            "DOCHDRNO",
            "DOCHDRID",
            "DOCPARID",
            "LINE_NO",
            "ITEMID",
            "ITEMNAME",
            "ITEMDESC",
            "QUANTITY",
            "UNIT",
            "PRICE",
            "DISCOUNT",
            "TOTAL",
            "MEMO",
            "LOCATIONID",
            "DEPARTMENTID",
            "REVRECSTARTDATE",
            "REVRECENDDATE",
            "WHENCREATED",
        ),
        None,
    ),
    "LOCATION": ObjectDefinition(
        "LOCATION", ("RECORDNO", "LOCATIONID", "NAME", "PARENTID", "STATUS", "CURRENCY"), "LOCATIONID"
    ),
    "DEPARTMENT": ObjectDefinition(
        "DEPARTMENT",
        (
            "RECORDNO",
            "DEPARTMENTID",
            "TITLE",
            "PARENTKEY",
            "PARENTID",
            "SUPERVISORNAME",
            "STATUS",
            "CUSTTITLE",
        ),
        "DEPARTMENTID",
    ),
    "ARTERM": ObjectDefinition("ARTERM", ("RECORDNO", "NAME", "DESCRIPTION", "STATUS", "DUEDAYS"), "NAME"),
    transaction_definitions.OBJECT_NAME: ObjectDefinition(
        transaction_definitions.OBJECT_NAME, transaction_definitions.FIELDS, "DOCID"
    ),
    # Posted by a Sales Invoice (receivables.py); not created or changed by generic functions.
    "ARINVOICE": ObjectDefinition(
        "ARINVOICE",
        (
            "RECORDNO",
            "RECORDID",
            "STATE",
            "CUSTOMERID",
            "CUSTOMERNAME",
            "DOCNUMBER",
            "DESCRIPTION",
            "TERMNAME",
            "WHENCREATED",
            "WHENPOSTED",
            "WHENDUE",
            "WHENPAID",
            "CURRENCY",
            "BASECURR",
            "TOTALENTERED",
            "TOTALPAID",
            "TOTALDUE",
            "TRX_TOTALENTERED",
            "TRX_TOTALPAID",
            "TRX_TOTALDUE",
            "MODULEKEY",
            "AUWHENCREATED",
            "WHENMODIFIED",
            "DUE_IN_DAYS",
        ),
        "RECORDID",
    ),
    # Made by `<create><ARPYMT>` or create_arpayment (receivables.py).
    "ARPYMT": ObjectDefinition(
        "ARPYMT",
        (
            "RECORDNO",
            "STATE",
            "PAYMENTMETHOD",
            "CUSTOMERID",
            "CUSTOMERNAME",
            "DOCNUMBER",
            "DESCRIPTION",
            "FINANCIALENTITY",
            "UNDEPOSITEDACCOUNTNO",
            "PRBATCH",
            "RECEIPTDATE",
            "PAYMENTDATE",
            "WHENPAID",
            "CURRENCY",
            "BASECURR",
            "TOTALENTERED",
            "TRX_TOTALENTERED",
            "WHENCREATED",
            "AUWHENCREATED",
            "WHENMODIFIED",
        ),
        None,
        frozenset(
            {
                "PAYMENTMETHOD",
                "CUSTOMERID",
                "DOCNUMBER",
                "DESCRIPTION",
                "FINANCIALENTITY",
                "UNDEPOSITEDACCOUNTNO",
                "PRBATCH",
                "RECEIPTDATE",
                "PAYMENTDATE",
                "CURRENCY",
                "BASECURR",
            }
        ),
        frozenset({"PAYMENTMETHOD", "CUSTOMERID", "RECEIPTDATE"}),
    ),
}

SEED_ITEMS: tuple[tuple[str, str, str, str], ...] = (
    # ITEMID, NAME, BASEPRICE, STATUS
    ("SUB-PLATFORM", "Platform subscription (annual)", "12000", "active"),
    ("SVC-ONBOARD", "Onboarding service", "2500", "active"),
    ("SVC-TRAINING", "Training add-on", "800", "active"),
    ("SUP-PREMIUM", "Premium support", "3000", "active"),
    ("HW-GATEWAY", "Gateway device", "499", "active"),
    ("OLD-LEGACY", "Legacy product (discontinued)", "100", "inactive"),
)
SEED_LOCATIONS = (("US", "United States", "USD"), ("UK", "United Kingdom", "GBP"))
SEED_DEPARTMENTS = (("SALES", "Sales"), ("SERVICES", "Services"))
SEED_CREATED = "01/01/2026 00:00:00"


def utc_now() -> datetime:
    """The wall clock (UTC). Sessions live on it; records use `SandboxState.now()`."""
    return datetime.now(UTC)


def sandbox_now(today: date | None, wall: datetime) -> datetime:
    """The sandbox's current date and time: the wall clock, moved to the day `today` when a test set one
    (the time of day keeps running)."""
    return wall if today is None else datetime.combine(today, wall.timetz())


def format_datetime(moment: datetime) -> str:
    """Intacct's record timestamp format: mm/dd/yyyy HH:MM:SS."""
    return moment.strftime("%m/%d/%Y %H:%M:%S")


@dataclass
class CompanyData:
    """Everything a transaction may change; snapshot and restored as a whole on rollback."""

    records: dict[str, list[Record]]
    next_recordno: dict[str, int]
    next_document_number: dict[str, int]
    next_customer_number: int
    completed_controlids: dict[str, set[str]]

    def snapshot(self) -> CompanyData:
        return copy.deepcopy(self)

    def all_completed_controlids(self) -> set[str]:
        return set().union(*self.completed_controlids.values())

    def forget_completed_controlids(self, control_ids: set[str]) -> dict[str, set[str]]:
        """Take these control ids out of the completed ones for a moment; returns what was taken."""
        taken = {company: completed & control_ids for company, completed in self.completed_controlids.items()}
        for company, ids in taken.items():
            self.completed_controlids[company] -= ids
        return taken

    def remember_completed_controlids(self, taken: dict[str, set[str]]) -> None:
        for company, ids in taken.items():
            self.completed_controlids.setdefault(company, set()).update(ids)


@dataclass
class SandboxConfig:
    """Settings changed through `PUT /admin/config`."""

    custom_fields: dict[str, list[str]] = field(default_factory=lambda: copy.deepcopy(DEFAULT_CUSTOM_FIELDS))
    session_seconds: int = DEFAULT_SESSION_SECONDS
    # Whether a function that failed under uniqueid=true still uses up its control id. Intacct's docs
    # say "previously executed and completed", which suggests not, but no source says (UNCERTAIN).
    remember_failed_controlids: bool = False
    # Whether a repeat sent while a slow request with the same control id is still running applies too
    # (the uniqueid check made on arrival), rather than being refused once the first one commits.
    # No source says which (UNCERTAIN).
    repeats_in_flight_apply: bool = False
    # The words of that refusal: only the third-party text "A successful transaction has already been
    # recorded with the control id X" was ever seen, without its errorno (UNCERTAIN); one of
    # DUPLICATE_CONTROLID_ANSWERS.
    duplicate_controlid_answer: str = DUPLICATE_CONTROLID_ANSWERS[0]
    # Whether update_sotransaction may change a Closed document (and so move it back to Pending).
    # Not documented (UNCERTAIN); default: a Closed document is refused.
    closed_orders_reopen: bool = False
    # Whether an empty element in a generic update clears the stored value (else it is ignored).
    # Indirect evidence only (UNCERTAIN, README "Empty elements on update"); default: it clears.
    empty_element_clears: bool = True
    # Unconfirmed maximum lengths switched on by a test: "<OBJECT>.<path>" -> length (lengths.py).
    extra_field_lengths: dict[str, int] = field(default_factory=dict)
    # Whether a converted document without <referenceno> takes its source's PONUMBER. Not documented
    # for the API (UNCERTAIN); default: it does.
    conversion_copies_reference: bool = True
    # The sandbox's current day (None: the wall clock's). Record timestamps and DUE_IN_DAYS follow it.
    today: date | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "custom_fields": copy.deepcopy(self.custom_fields),
            "session_seconds": self.session_seconds,
            "remember_failed_controlids": self.remember_failed_controlids,
            "repeats_in_flight_apply": self.repeats_in_flight_apply,
            "duplicate_controlid_answer": self.duplicate_controlid_answer,
            "closed_orders_reopen": self.closed_orders_reopen,
            "empty_element_clears": self.empty_element_clears,
            "extra_field_lengths": dict(self.extra_field_lengths),
            "conversion_copies_reference": self.conversion_copies_reference,
            "today": self.today.isoformat() if self.today else None,
        }


@dataclass
class ApiSession:
    """An API session made by getAPISession; valid until `expires_at`, which every call pushes forward."""

    session_id: str
    company_id: str
    user_id: str
    location_id: str
    expires_at: datetime


@dataclass
class ResultSet:
    """A readByQuery result kept for readMore: the remaining rows of the query."""

    result_id: str
    object_name: str
    rows: list[Record]
    fields: list[str]
    page_size: int
    position: int


@dataclass
class Counts:
    """What the gateway has seen since the last reset."""

    requests: int = 0
    functions: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "functions": dict(self.functions),
            "statuses": dict(self.statuses),
        }


def seed_company_data() -> CompanyData:
    """The company as it is after a reset: reference data, no customers and no orders."""
    data = CompanyData(
        records={name: [] for name in OBJECTS},
        next_recordno={},
        next_document_number={},
        next_customer_number=1,
        completed_controlids={},
    )
    for item_id, name, price, status in SEED_ITEMS:
        add_record(
            data,
            "ITEM",
            {
                "ITEMID": item_id,
                "NAME": name,
                "STATUS": status,
                "ITEMTYPE": "Non-Inventory (Sales only)",
                "PRODUCTLINEID": "",
                "EXTENDED_DESCRIPTION": "",
                "BASEPRICE": price,
                "UOM": "Each",
                "TAXABLE": "false",
                "GLGROUP": "",
                "MRR": "false",
                "WHENCREATED": SEED_CREATED,
                "WHENMODIFIED": SEED_CREATED,
            },
        )
    for location_id, name, currency in SEED_LOCATIONS:
        add_record(
            data,
            "LOCATION",
            {
                "LOCATIONID": location_id,
                "NAME": name,
                "PARENTID": "",
                "STATUS": "active",
                "CURRENCY": currency,
            },
        )
    for department_id, title in SEED_DEPARTMENTS:
        add_record(
            data,
            "DEPARTMENT",
            {
                "DEPARTMENTID": department_id,
                "TITLE": title,
                "PARENTKEY": "",
                "PARENTID": "",
                "SUPERVISORNAME": "",
                "STATUS": "active",
                "CUSTTITLE": "",
            },
        )
    for term, days in TERM_DAYS.items():
        add_record(
            data,
            "ARTERM",
            {"NAME": term, "DESCRIPTION": term, "STATUS": "active", "DUEDAYS": str(days)},
        )
    for definition in transaction_definitions.definition_records(TRANSACTION_DEFINITIONS):
        add_record(data, transaction_definitions.OBJECT_NAME, definition)
    return data


def add_record(data: CompanyData, object_name: str, fields: Record) -> Record:
    """Store a new record with the next RECORDNO of its object and return it."""
    recordno = data.next_recordno.get(object_name, 1)
    data.next_recordno[object_name] = recordno + 1
    record: Record = {"RECORDNO": str(recordno), **fields}
    data.records[object_name].append(record)
    return record


def find_record(data: CompanyData, object_name: str, field_name: str, value: str) -> Record | None:
    """The first record of `object_name` whose `field_name` equals `value`."""
    for record in data.records[object_name]:
        if record.get(field_name) == value:
            return record
    return None


class SandboxState:
    """All mutable state of one sandbox instance, guarded by `lock`."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.data = seed_company_data()
        self.config = SandboxConfig()
        self.sessions: dict[str, ApiSession] = {}
        self.result_sets: dict[str, ResultSet] = {}
        self.counts = Counts()
        self.faults = FaultState()

    def reset(self) -> None:
        """Back to the seed: no customers or orders, default config, no faults, sessions or counts."""
        with self.lock:
            self.data = seed_company_data()
            self.config = SandboxConfig()
            self.sessions.clear()
            self.result_sets.clear()
            self.counts = Counts()
            self.faults = FaultState()

    def now(self, wall: datetime | None = None) -> datetime:
        """The sandbox's current date and time (UTC), on the configured day if a test moved it: the one
        clock for record timestamps (WHENCREATED, WHENMODIFIED, ...) and DUE_IN_DAYS."""
        return sandbox_now(self.config.today, wall or utc_now())

    def custom_fields(self, object_name: str) -> list[str]:
        return self.config.custom_fields.get(object_name, [])

    def all_fields(self, object_name: str) -> list[str]:
        """Standard then custom fields of an object, in output order."""
        return [*OBJECTS[object_name].fields, *self.custom_fields(object_name)]

    def remember_result_set(self, result_set: ResultSet) -> None:
        """Keep a readByQuery result for readMore, forgetting the oldest ones beyond a bound."""
        self.result_sets[result_set.result_id] = result_set
        while len(self.result_sets) > MAX_RESULT_SETS:
            del self.result_sets[next(iter(self.result_sets))]
