"""`sfintacct preflight`: before go-live, check the set-up against the real Intacct company and Salesforce
org, through the clients the workers use. Every check only reads; each one that fails says what to do.

- mapping_file: the mapping file loads (the one of this checkout, or $SFINTACCT_MAPPING_FILE).
- intacct_login: the Web Services sender (control) and user (login) sign in (getAPISession).
- salesforce_login: the integration user gets a token and makes a call (describe of Account).
- intacct_custom_fields: `lookup` of CUSTOMER has the mapping's salesforce_id_field and customer custom
  fields (`lookup` of SODOCUMENT / SODOCUMENTENTRY: its order and line custom fields, if any).
- intacct_items: every active Product2's code, as the mapping turns it into an ITEMID, is an active
  Intacct item (one SOQL query; ITEM queried with IN lists of 100 ids).
- intacct_payment_terms: the payment terms the mapping names exist (query of ARTERM).
- intacct_transaction_definition: the deployment's transaction type exists (query of SODOCUMENTPARAMS).
- salesforce_read_access: Account, Opportunity, OpportunityLineItem, Product2 and PricebookEntry are
  queryable, and the fields the workers read are visible (describe).
- salesforce_write_access: the Intacct_* fields the workers write are updateable (describe).

A check that needs another one (a sign-in, the mapping) is reported as not checked when that one failed.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sfintacct.faults import ConfigurationFault
from sfintacct.intacct.errors import (
    AuthenticationFailed,
    ControlFailure,
    IntacctError,
    SenderRejected,
    TransientIntacctError,
)
from sfintacct.intacct.query import in_list
from sfintacct.mapping import DEFAULT_MAPPING_FILE, MAPPING_FILE_VARIABLE, SyncMapping, load_mapping
from sfintacct.salesforce.client import ObjectDescribe, SalesforceClient
from sfintacct.salesforce.errors import (
    SalesforceAuthenticationError,
    SalesforceError,
    SalesforceSettingsError,
    TransientSalesforceError,
)
from sfintacct.salesforce.models import field_value
from sfintacct.salesforce_fields import written_fields
from sfintacct_ops.deployment import Deployment, DeploymentError

MAPPING_FILE = "mapping_file"
INTACCT_LOGIN = "intacct_login"
SALESFORCE_LOGIN = "salesforce_login"
INTACCT_CUSTOM_FIELDS = "intacct_custom_fields"
INTACCT_ITEMS = "intacct_items"
INTACCT_PAYMENT_TERMS = "intacct_payment_terms"
INTACCT_TRANSACTION_DEFINITION = "intacct_transaction_definition"
SALESFORCE_READ_ACCESS = "salesforce_read_access"
SALESFORCE_WRITE_ACCESS = "salesforce_write_access"
CHECKS = (
    MAPPING_FILE,
    INTACCT_LOGIN,
    SALESFORCE_LOGIN,
    INTACCT_CUSTOM_FIELDS,
    INTACCT_ITEMS,
    INTACCT_PAYMENT_TERMS,
    INTACCT_TRANSACTION_DEFINITION,
    SALESFORCE_READ_ACCESS,
    SALESFORCE_WRITE_ACCESS,
)
# The objects the workers read (the Opportunity query reaches the last two through its line items).
READ_OBJECTS = ("Account", "Opportunity", "OpportunityLineItem", "Product2", "PricebookEntry")
# Where each query-field list of the workers starts.
QUERY_ROOTS = ("Opportunity", "Account", "OpportunityLineItem")
# Line paths of item_id that read a field of the product: through a relationship, or the product's code
# that Salesforce copies to the line and its price book entry.
PRODUCT_PREFIXES = ("Product2.", "PricebookEntry.Product2.")
PRODUCT_CODE_FIELDS = ("ProductCode", "PricebookEntry.ProductCode")
# Documented fields only (developer.intacct.com: ARTERM is read by its NAME; SODOCUMENTPARAMS `query`
# selects RECORDNO, DOCID, DOCCLASS). A `query` selecting a field the object lacks fails as a whole.
TERM_FIELDS = ("RECORDNO", "NAME")
TRANSACTION_DEFINITION_FIELDS = ("RECORDNO", "DOCID", "DOCCLASS")
LISTED = 10  # names a detail lists before "and N more"
PACKAGE_PERMISSION_SET = "Sfintacct_Integration"


@dataclass(frozen=True)
class CheckResult:
    """One check: whether it passed, what was found, and (when it failed) what to do."""

    name: str
    passed: bool
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class CheckFailed(Exception):
    """A check's finding: what is wrong and what to do about it."""

    def __init__(self, detail: str, fix: str) -> None:
        super().__init__(detail)
        self.detail = detail
        self.fix = fix


def preflight(deployment: Deployment, *, mapping: SyncMapping | None = None) -> list[CheckResult]:
    """Run every check (CHECKS, in that order) against the deployment's Intacct company and Salesforce org."""
    return _Preflight(deployment, mapping).run()


def mapping_file_path() -> Path:
    """The mapping file load_mapping() reads: $SFINTACCT_MAPPING_FILE, else the one in the layer."""
    configured = os.environ.get(MAPPING_FILE_VARIABLE, "").strip()
    return Path(configured) if configured else DEFAULT_MAPPING_FILE


class _Preflight:
    def __init__(self, deployment: Deployment, mapping: SyncMapping | None) -> None:
        self.deployment = deployment
        self._mapping = mapping
        self._salesforce: SalesforceClient | None = None
        self._describes: dict[str, ObjectDescribe | SalesforceError] = {}

    def run(self) -> list[CheckResult]:
        mapping = self._check(MAPPING_FILE, self.mapping_file)
        intacct = self._check(INTACCT_LOGIN, self.intacct_login)
        salesforce = self._check(SALESFORCE_LOGIN, self.salesforce_login)
        results = [mapping, intacct, salesforce]
        planned: list[tuple[str, Callable[[], str], tuple[CheckResult, ...]]] = [
            (INTACCT_CUSTOM_FIELDS, self.custom_fields, (mapping, intacct)),
            (INTACCT_ITEMS, self.items, (mapping, intacct, salesforce)),
            (INTACCT_PAYMENT_TERMS, self.payment_terms, (mapping, intacct)),
            (INTACCT_TRANSACTION_DEFINITION, self.transaction_definition, (intacct,)),
            (SALESFORCE_READ_ACCESS, self.read_access, (mapping, salesforce)),
            (SALESFORCE_WRITE_ACCESS, self.write_access, (salesforce,)),
        ]
        for name, check, needs in planned:
            failed = " and ".join(need.name for need in needs if not need.passed)
            if failed:
                results.append(
                    CheckResult(name, False, f"not checked: {failed} failed", f"fix {failed} first")
                )
            else:
                results.append(self._check(name, check))
        return results

    @staticmethod
    def _check(name: str, check: Callable[[], str]) -> CheckResult:
        try:
            detail = check()
        except CheckFailed as failure:
            return CheckResult(name, False, failure.detail, failure.fix)
        except Exception as error:  # every failure becomes a finding; the other checks still run
            return CheckResult(name, False, f"{type(error).__name__}: {error}", _what_to_do(error))
        return CheckResult(name, True, detail)

    # ------------------------------------------------------------------ the set-up

    @property
    def mapping(self) -> SyncMapping:
        if self._mapping is None:
            self._mapping = load_mapping()
        return self._mapping

    @property
    def salesforce(self) -> SalesforceClient:
        if self._salesforce is None:
            self._salesforce = SalesforceClient(self.deployment.salesforce_settings())
        return self._salesforce

    def describe(self, object_type: str) -> ObjectDescribe:
        """The object's describe, read once; a failure is remembered and raised again."""
        if object_type not in self._describes:
            try:
                self._describes[object_type] = self.salesforce.describe(object_type)
            except SalesforceError as error:
                self._describes[object_type] = error
        found = self._describes[object_type]
        if isinstance(found, SalesforceError):
            raise found
        return found

    # ------------------------------------------------------------------ checks

    def mapping_file(self) -> str:
        given = self._mapping is not None
        mapping = self.mapping
        entries = len(mapping.customer.fields) + len(mapping.order.fields) + len(mapping.line.fields)
        where = "the mapping given" if given else str(mapping_file_path())
        return f"{where}: {entries} field entries, customer ids {mapping.customer_id_strategy}"

    def intacct_login(self) -> str:
        settings = self.deployment.intacct_settings()
        entity = f", entity {settings.entity_id}" if settings.entity_id else ""
        try:
            self.deployment.intacct_client().gateway.open_session()
        except SenderRejected as error:
            raise CheckFailed(
                f"Intacct refused the Web Services sender {settings.sender_id} (control): {error.message}",
                f"{SenderRejected.what_to_do} (Company > Setup > Company > Security > Web Services "
                f"authorizations: add the sender id for company {settings.company_id})",
            ) from None
        except AuthenticationFailed as error:
            raise CheckFailed(
                f"Intacct accepted the sender but refused the sign-in of user {settings.user_id} to company "
                f"{settings.company_id}{entity} (login): {error.message}",
                "correct user_id, user_password, company_id (and entity_id) in the Intacct secret; the user "
                "must be an active Web Services user of the company",
            ) from None
        except ControlFailure as error:
            raise CheckFailed(
                f"Intacct refused the request as a whole (control), before any sign-in: {error.message}",
                "check the sender id and password in the Intacct secret and the endpoint_url",
            ) from None
        return (
            f"sender {settings.sender_id} (control) and user {settings.user_id} of company "
            f"{settings.company_id}{entity} (login) signed in at {settings.endpoint_url}"
        )

    def salesforce_login(self) -> str:
        settings = self.deployment.salesforce_settings()
        who = settings.username or f"the client {settings.client_id}"
        try:
            self.describe("Account")
        except (SalesforceAuthenticationError, SalesforceSettingsError, TransientSalesforceError):
            raise
        except SalesforceError as error:  # signed in, but Account is out of reach: salesforce_read_access
            return f"{who} signed in at {settings.login_url} ({settings.auth_flow}); Account: {error}"
        return f"{who} signed in at {settings.login_url} ({settings.auth_flow})"

    def custom_fields(self) -> str:
        mapping, transaction_type = self.mapping, self.deployment.transaction_type
        wanted: list[tuple[str, str | None, list[tuple[str, str]]]] = [
            (
                "CUSTOMER",
                None,
                [
                    (mapping.salesforce_id_field, "customer.salesforce_id_field"),
                    *((name, f"customer.custom_fields.{name}") for name in mapping.customer.custom_fields),
                ],
            )
        ]
        if mapping.order.custom_fields:
            names = [(name, f"order.custom_fields.{name}") for name in mapping.order.custom_fields]
            wanted.append(("SODOCUMENT", transaction_type, names))
        if mapping.line.custom_fields:
            names = [(name, f"line.custom_fields.{name}") for name in mapping.line.custom_fields]
            wanted.append(("SODOCUMENTENTRY", transaction_type, names))
        client = self.deployment.intacct_client()
        found: list[str] = []
        missing: list[str] = []
        read_only: list[str] = []
        entries: list[str] = []
        for object_name, docparid, names in wanted:
            fields = {
                field.name.upper(): field for field in client.lookup_fields(object_name, docparid=docparid)
            }
            for name, entry in names:
                field = fields.get(name.upper())
                if field is None:
                    missing.append(f"{object_name}.{name}")
                    entries.append(entry)
                elif field.read_only:
                    read_only.append(f"{object_name}.{name}")
                    entries.append(entry)
                else:
                    found.append(f"{object_name}.{name}")
        if not missing and not read_only:
            return f"found {', '.join(found)}"
        problems = []
        if missing:
            problems.append(f"no custom field {_listed(missing)} in Intacct (lookup)")
        if read_only:
            problems.append(f"{_listed(read_only)} read-only (lookup)")
        id_field = f"CUSTOMER.{mapping.salesforce_id_field}"
        note = (
            f" ({mapping.salesforce_id_field}: text, 18 characters; it holds the Salesforce Account id)"
            if id_field in missing
            else ""
        )
        raise CheckFailed(
            "; ".join(problems),
            f"create the custom field(s) {_listed(missing + read_only)} in Intacct with exactly this "
            f"integration name, writable by the Web Services user{note}; or name the fields your company "
            f"has in the mapping file ({_listed(entries)})",
        )

    def items(self) -> str:
        mapping = self.mapping
        source = mapping.line.fields["item_id"]
        if source.value is not None:
            code = str(source.value).strip()
            wanted = {mapping.line.items.get(code, code): [f"the constant {code!r} of line.fields.item_id"]}
            without_code: list[str] = []
            products, path = "every line (a constant)", ""
        else:
            product_field = _product_field(source.field or "")
            if product_field is None:
                return (
                    f"not checked: line.fields.item_id reads the line's {source.field}, not a field of the "
                    "product, so no product list can be checked"
                )
            path = product_field
            wanted, without_code, count = self._active_products(path, source.default)
            products = f"{count} active product(s) (Product2.{path})"
        if not wanted and not without_code:
            return f"{products}: nothing to check"
        items = self.deployment.intacct_client().get_items(wanted)
        missing = [item_id for item_id in wanted if item_id not in items]
        inactive = [item_id for item_id in wanted if item_id in items and not items[item_id].active]
        if not missing and not inactive and not without_code:
            return f"{products}: {len(wanted)} Intacct item(s), all active"
        problems, fixes = [], []
        if missing:
            problems.append(f"no Intacct item {_listed(_with_products(missing, wanted))}")
            fixes.append(
                f"create the Intacct item(s) {_listed(missing)}, or map the product codes to existing "
                "ITEMIDs in [line.items] of the mapping file, or deactivate the products in Salesforce"
            )
        if inactive:
            problems.append(f"inactive Intacct item {_listed(_with_products(inactive, wanted))}")
            fixes.append(f"reactivate the Intacct item(s) {_listed(inactive)}, or deactivate the products")
        if without_code:
            problems.append(f"active product(s) without {path}: {_listed(without_code)}")
            fixes.append(f"fill Product2.{path} of these products, or deactivate them")
        raise CheckFailed(f"{products}: " + "; ".join(problems), "; ".join(fixes))

    def _active_products(
        self, path: str, default: object | None
    ) -> tuple[dict[str, list[str]], list[str], int]:
        """The ITEMIDs the active products map to (each with its products), the products without a code,
        and how many active products there are."""
        selected: list[str] = []
        for name in ("Id", "Name", path):  # SOQL refuses a field selected twice, in any case
            if name.lower() not in {chosen.lower() for chosen in selected}:
                selected.append(name)
        # Field names only, each checked by the mapping (FIELD_PATH_PATTERN); no value is quoted in.
        soql = f"SELECT {', '.join(selected)} FROM Product2 WHERE IsActive = true"  # noqa: S608
        rows = self.salesforce.query(soql)
        wanted: dict[str, list[str]] = {}
        without_code: list[str] = []
        for row in sorted(rows, key=lambda row: (str(row.get("Name") or ""), str(row.get("Id")))):
            label = f"product {row.get('Name')!r} {row.get('Id')}"
            value = field_value(row, path)
            code = "" if value is None else str(value).strip()
            if not code and default is not None:
                code = str(default).strip()
            if not code:
                without_code.append(label)
                continue
            item_id = self.mapping.line.items.get(code, code)
            translated = "" if item_id == code else f", code {code} in [line.items]"
            wanted.setdefault(item_id, []).append(label + translated)
        return wanted, without_code, len(rows)

    def payment_terms(self) -> str:
        mapping = self.mapping
        names: dict[str, list[str]] = {}  # term -> the mapping entries that name it
        per_record: list[str] = []
        for section, fields in (("customer", mapping.customer.fields), ("order", mapping.order.fields)):
            source = fields.get("term_name")
            if source is None:
                continue
            entry = f"{section}.fields.term_name"
            if source.field is not None:
                per_record.append(f"{entry} reads {source.field} per record")
            constant = source.value if source.value is not None else source.default
            if constant is not None and str(constant).strip():
                names.setdefault(str(constant).strip(), []).append(entry)
        unchecked = f"; not checked: {', '.join(per_record)}" if per_record else ""
        if not names:
            return f"the mapping names no payment term{unchecked}"
        records = self.deployment.intacct_client().query(
            "ARTERM", TERM_FIELDS, query_filter=in_list("NAME", list(names))
        )
        found = {str(record.get("NAME", "")).strip() for record in records}
        missing = [name for name in names if name not in found]
        if not missing:
            return f"found {', '.join(names)} (ARTERM){unchecked}"
        entries = [entry for name in missing for entry in names[name]]
        raise CheckFailed(
            f"no Intacct AR term {_listed(missing)} (ARTERM), named by {_listed(entries)}{unchecked}",
            f"create the AR payment term(s) {_listed(missing)} in Intacct (Accounts Receivable > Setup > "
            f"Terms), or name an existing term in the mapping file ({_listed(entries)})",
        )

    def transaction_definition(self) -> str:
        """The stack's IntacctTransactionType, and the type of mapping's order.transaction_type_when."""
        wanted = self.mapping.transaction_types(self.deployment.transaction_type)
        records = list(
            self.deployment.intacct_client().query("SODOCUMENTPARAMS", TRANSACTION_DEFINITION_FIELDS)
        )
        by_name = {str(record.get("DOCID", "")).strip(): record for record in records}
        missing = [name for name in wanted if name not in by_name]
        if not missing:
            kinds = [str(by_name[name].get("DOCCLASS", "")).strip() for name in wanted]
            return ", ".join(
                f"{name!r} exists (SODOCUMENTPARAMS{', template type ' + kind if kind else ''})"
                for name, kind in zip(wanted, kinds, strict=True)
            )
        raise CheckFailed(
            f"no Order Entry transaction definition {_listed([repr(name) for name in missing])} "
            "(SODOCUMENTPARAMS); the company has "
            f"{_listed(sorted(by_name)) or 'none'}",
            f"create the Order Entry transaction definition(s) {_listed(missing)} in Intacct, or set the "
            "stack's IntacctTransactionType parameter (or the mapping's order.transaction_type_when) to one "
            "that exists",
        )

    def read_access(self) -> str:
        problems: list[str] = []
        for object_type in READ_OBJECTS:
            try:
                if not self.describe(object_type).queryable:
                    problems.append(f"{object_type} is not queryable")
            except SalesforceError as error:
                problems.append(f"{object_type} cannot be described ({error})")
        query_fields = self.deployment.salesforce_client().query_fields
        paths = (query_fields.opportunity_fields, query_fields.account_fields, query_fields.line_fields)
        hidden: list[str] = []
        checked = 0
        for root, fields in zip(QUERY_ROOTS, paths, strict=True):
            for path in fields:
                checked += 1
                problem = self._unreadable(root, path)
                if problem is not None and problem not in hidden:
                    hidden.append(problem)
        if hidden:
            problems.append(f"not visible to the integration user (or not in the org): {_listed(hidden)}")
        if not problems:
            return (
                f"{', '.join(READ_OBJECTS)} are queryable; the {checked} fields the workers read are visible"
            )
        raise CheckFailed(
            "; ".join(problems),
            "give the integration user read access to these objects and fields (its profile or a permission "
            f"set; the package's permission set {PACKAGE_PERMISSION_SET} covers the Intacct_* fields), or "
            "take the fields out of the mapping file / SALESFORCE_*_FIELDS",
        )

    def write_access(self) -> str:
        problems: list[str] = []
        written = written_fields()
        for object_type in dict.fromkeys(field.object_type for field in written):
            try:
                describe = self.describe(object_type)
            except SalesforceError as error:
                problems.append(f"{object_type} cannot be described ({error})")
                continue
            if not describe.updateable:
                problems.append(f"{object_type} records cannot be edited")
            for field in (field for field in written if field.object_type == object_type):
                found = describe.field(field.name)
                if found is None:
                    problems.append(f"{object_type}.{field.name} does not exist or is not visible")
                elif not found.updateable:
                    problems.append(f"{object_type}.{field.name} is read-only")
        if not problems:
            return f"the {len(written)} fields the workers write are updateable"
        raise CheckFailed(
            "the integration user cannot write what the workers write back: " + _listed(problems),
            f"deploy the Salesforce package (salesforce/) and assign its permission set "
            f"{PACKAGE_PERMISSION_SET} to the integration user",
        )

    def _unreadable(self, root: str, path: str) -> str | None:
        """What stops the user reading `path` from `root` (a missing field or relationship), or None."""
        object_type: str = root
        *relationships, name = path.split(".")
        for relationship in relationships:
            try:
                lookup = self.describe(object_type).relationship(relationship)
            except SalesforceError:
                return f"{object_type} (cannot be described)"
            if lookup is None:
                return f"{object_type}.{relationship} (relationship)"
            if len(lookup.reference_to) != 1:
                return None  # a polymorphic lookup: not followed
            object_type = lookup.reference_to[0]
        try:
            describe = self.describe(object_type)
        except SalesforceError:
            return f"{object_type} (cannot be described)"
        return None if describe.field(name) is not None else f"{object_type}.{name}"


# ---------------------------------------------------------------------------- helpers


def _what_to_do(error: Exception) -> str:
    if isinstance(error, DeploymentError):
        return "make the secret readable (its id and secretsmanager:GetSecretValue) and a JSON object"
    if isinstance(error, ConfigurationFault):
        return error.what_to_do
    if isinstance(error, TransientIntacctError | TransientSalesforceError):
        return "run preflight again; if it keeps failing, check that the endpoint is reachable from here"
    if isinstance(error, IntacctError | SalesforceError):
        return "read the error: it is the answer of Intacct or Salesforce"
    return "read the error"


def _product_field(line_path: str) -> str | None:
    """The Product2 field a line's item_id path reads (`Product2.ProductCode` -> `ProductCode`), or None."""
    if line_path in PRODUCT_CODE_FIELDS:
        return "ProductCode"
    for prefix in PRODUCT_PREFIXES:
        if line_path.startswith(prefix):
            return line_path[len(prefix) :]
    return None


def _with_products(item_ids: Sequence[str], wanted: Mapping[str, list[str]]) -> list[str]:
    """`ITEMID (product 'Name' 01t...)`, with at most three of the products that need the item."""
    return [
        f"{item_id} ({', '.join(wanted[item_id][:3])}{', ...' if len(wanted[item_id]) > 3 else ''})"
        for item_id in item_ids
    ]


def _listed(names: Sequence[str]) -> str:
    """The first LISTED names, and how many more."""
    shown = ", ".join(names[:LISTED])
    return f"{shown} and {len(names) - LISTED} more" if len(names) > LISTED else shown
