"""The sandbox org's records: create/update/delete with Salesforce's rules and derived fields.

Derived fields: Contact.Name; Opportunity IsClosed/IsWon/ForecastCategoryName/Probability from the stage
table, ExpectedRevenue, Amount and HasOpportunityLineItem from its line items; OpportunityLineItem
Product2Id/ProductCode/Name/ListPrice from its price book entry and TotalPrice/Subtotal from quantity,
price and discount; PricebookEntry Name/ProductCode from its product. Formula fields (the package's) are
computed on every save of their record and of the parent records they read, so every read sees the
current value. Every committed change is recorded as a ChangeEvent (what Outbound Messages fire on); a
formula's new value after a parent's change is none (Salesforce runs no automation for it).

The package's before-save flows act on saves: the ones that blank fields on create (`blank_on_create`)
and the ones that refuse a save with a Custom Error (`custom_errors`).

The caller holds `store.lock` around an operation and wraps writes in begin()/rollback() so a failed
request leaves no trace.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sandbox.salesforce.errors import ApiError, api_error, entity_is_deleted, not_found
from sandbox.salesforce.flow_formula import Formula, parse_field_formula, parse_formula, render_merge_text
from sandbox.salesforce.ids import IdGenerator
from sandbox.salesforce.schema import (
    FieldSpec,
    FieldType,
    ObjectSpec,
    Schema,
    coerce_input,
    json_value,
    now_utc,
)

Record = dict[str, Any]
ChangeKind = Literal["created", "updated", "deleted"]
# Why a record changed: a save through the API ("save"), an Opportunity's Amount recomputed from its line
# items ("rollup"), a child given the winner of a merge as its parent ("reparent").
ChangeCause = Literal["save", "rollup", "reparent"]
MERGEABLE_OBJECTS = ("Account", "Contact")
MAX_MERGED_RECORDS = 2  # besides the master: Salesforce merges up to three records
# The children a merge moves to the master: (child object, its reference to the merged object).
MERGE_CHILDREN: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
    "Contact": (),
}


@dataclass(frozen=True)
class Stage:
    """One row of the opportunity stage table (Setup > Opportunity Stages)."""

    name: str
    probability: float
    is_closed: bool
    is_won: bool
    forecast_category: str


STAGES: tuple[Stage, ...] = (
    Stage("Prospecting", 10, False, False, "Pipeline"),
    Stage("Qualification", 10, False, False, "Pipeline"),
    Stage("Needs Analysis", 20, False, False, "Pipeline"),
    Stage("Value Proposition", 50, False, False, "Pipeline"),
    Stage("Id. Decision Makers", 60, False, False, "Pipeline"),
    Stage("Perception Analysis", 70, False, False, "Pipeline"),
    Stage("Proposal/Price Quote", 75, False, False, "Pipeline"),
    Stage("Negotiation/Review", 90, False, False, "Pipeline"),
    Stage("Closed Won", 100, True, True, "Closed"),
    Stage("Closed Lost", 0, True, False, "Omitted"),
)
STAGES_BY_NAME = {stage.name: stage for stage in STAGES}
STANDARD_PRICEBOOK_NAME = "Standard Price Book"


@dataclass(frozen=True)
class ChangeEvent:
    """A committed change of one record; `before`/`after` are copies of the record's fields."""

    kind: ChangeKind
    object_type: str
    record_id: str
    before: Record | None
    after: Record | None
    cause: ChangeCause = "save"


@dataclass(frozen=True)
class ValidationRule:
    """A custom validation rule: when every `when` field has the given JSON value, the save fails."""

    object_type: str
    message: str
    error_field: str | None = None
    when: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SeedUser:
    user_id: str
    username: str
    first_name: str
    last_name: str
    permission_sets: tuple[str, ...] = ()  # the package's permission sets assigned to the user


@dataclass(frozen=True)
class CustomErrorRule:
    """A before-save flow's Custom Error: a save of `object_type` (on create and/or update) for which the
    entry formula holds is refused with FIELD_CUSTOM_VALIDATION_EXCEPTION and `message`, its $Record
    merge fields filled in. `permission_holders`: each custom permission the formula names -> the users
    holding it."""

    flow: str
    object_type: str
    on_create: bool
    on_update: bool
    formula: str
    message: str
    permission_holders: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def permissions_of(self, user_id: str) -> frozenset[str]:
        return frozenset(permission for permission, users in self.permission_holders if user_id in users)


@dataclass(frozen=True)
class Savepoint:
    records: dict[str, dict[str, Record]]
    event_count: int


def money(value: float | Decimal) -> float:
    """Round half-up to cents, like Salesforce currency fields."""
    return float(Decimal(str(value)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def field_error(status: int, code: str, message: str, fields: list[str]) -> ApiError:
    return api_error(status, code, message, fields)


def integrity_error(message: str, fields: list[str]) -> ApiError:
    return api_error(400, "FIELD_INTEGRITY_EXCEPTION", f"field integrity exception: {message}", fields)


class Store:
    """All records of the org, keyed by object name then 18-character id (deleted ones kept, flagged)."""

    def __init__(
        self,
        ids: IdGenerator,
        users: list[SeedUser],
        schema: Schema,
        blank_on_create: dict[str, tuple[str, ...]] | None = None,
        custom_errors: Sequence[CustomErrorRule] = (),
    ) -> None:
        self.lock = threading.RLock()
        self.ids = ids
        self.users = users
        self.schema = schema
        # Object -> fields the org's before-save flows blank on every new record (org_setup.py).
        self.blank_on_create = dict(blank_on_create or {})
        # The org's before-save flows that refuse saves with a Custom Error (org_setup.py).
        self.custom_errors = tuple(custom_errors)
        self._formulas, self._formula_children = _formula_fields(schema)
        self.standard_pricebook_id = ids.for_object("Pricebook2")
        self.records: dict[str, dict[str, Record]] = {}
        self.events: list[ChangeEvent] = []
        self.validation_rules: list[ValidationRule] = []
        self.reset()

    # --- lifecycle ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Back to the seed org: users, the standard price book, no other records, no rules."""
        with self.lock:
            self.records = {name: {} for name in self.schema.objects}
            self.events = []
            self.validation_rules = []
            created = now_utc()
            for user in self.users:
                self.records["User"][user.user_id] = {
                    **self._blank(self.schema["User"]),
                    **self._system_values(user.user_id, user.user_id, created),
                    "Username": user.username,
                    "FirstName": user.first_name,
                    "LastName": user.last_name,
                    "Name": f"{user.first_name} {user.last_name}",
                    "Email": user.username,
                    "Alias": (user.first_name[:1] + user.last_name[:4]).lower(),
                    "IsActive": True,
                }
            owner = self.users[0].user_id
            self.records["Pricebook2"][self.standard_pricebook_id] = {
                **self._blank(self.schema["Pricebook2"]),
                **self._system_values(self.standard_pricebook_id, owner, created),
                "Name": STANDARD_PRICEBOOK_NAME,
                "IsActive": True,
                "IsStandard": True,
            }

    def begin(self) -> Savepoint:
        """A point to roll back to (the caller holds the lock until commit or rollback)."""
        return Savepoint(
            {
                name: {key: dict(record) for key, record in table.items()}
                for name, table in self.records.items()
            },
            len(self.events),
        )

    def rollback(self, savepoint: Savepoint) -> None:
        self.records = savepoint.records
        del self.events[savepoint.event_count :]

    def take_events(self) -> list[ChangeEvent]:
        """The committed changes since the last call."""
        events, self.events = self.events, []
        return events

    # --- reads ----------------------------------------------------------------------------------

    def get(self, object_type: str, record_id: str) -> Record | None:
        """The record (deleted or not), or None."""
        return self.records[object_type].get(record_id)

    def live(self, object_type: str) -> list[Record]:
        """The records of a type that are not deleted, in creation order."""
        return [record for record in self.records[object_type].values() if not record["IsDeleted"]]

    def every(self, object_type: str) -> list[Record]:
        """All records of a type, deleted ones included."""
        return list(self.records[object_type].values())

    def require_live(self, object_type: str, record_id: str) -> Record:
        record = self.get(object_type, record_id)
        if record is None:
            raise not_found()
        if record["IsDeleted"]:
            raise entity_is_deleted()
        return record

    # --- writes ---------------------------------------------------------------------------------

    def create(self, spec: ObjectSpec, body: dict[str, Any], user_id: str) -> str:
        """Insert a record from a JSON body; the new 18-character id."""
        values = self._parse_body(spec, body, creating=True)
        record = self._blank(spec)
        record.update(values)
        if spec.field("OwnerId") is not None and record["OwnerId"] is None:
            record["OwnerId"] = user_id
        record_id = self.ids.new_id(spec.key_prefix)
        record.update(self._system_values(record_id, user_id, now_utc()))
        self._check_required(spec, record, creating=True)
        self._check_references(spec, values)
        for name in self.blank_on_create.get(spec.name, ()):  # before-save flows on create
            blanked = spec.field(name)
            record[name] = False if blanked is not None and blanked.type is FieldType.BOOLEAN else None
            values.pop(name, None)
        self._check_custom_errors(spec, record, None, user_id)
        self._before_save(spec, record, values, None)
        self._compute_formulas(spec.name, record)
        self._check_validation_rules(spec, record)
        self.records[spec.name][record_id] = record
        self.events.append(ChangeEvent("created", spec.name, record_id, None, dict(record)))
        self._after_save(spec, record, None, user_id)
        return record_id

    def update(self, spec: ObjectSpec, record_id: str, body: dict[str, Any], user_id: str) -> None:
        """Apply a JSON body to an existing record."""
        record = self.require_live(spec.name, record_id)
        values = self._parse_body(spec, body, creating=False)
        before = dict(record)
        record.update(values)
        self._check_required(spec, record, creating=False)
        self._check_references(spec, values)
        self._check_custom_errors(spec, record, before, user_id)
        self._before_save(spec, record, values, before)
        self._compute_formulas(spec.name, record)
        self._check_validation_rules(spec, record)
        self._touch(record, user_id)
        self.events.append(ChangeEvent("updated", spec.name, record_id, before, dict(record)))
        self._after_save(spec, record, before, user_id)
        self._refresh_children(spec.name, record)

    def delete(self, spec: ObjectSpec, record_id: str, user_id: str) -> None:
        """Move a record (and the records Salesforce deletes with it) to the recycle bin."""
        record = self.require_live(spec.name, record_id)
        self._check_deletable(spec, record)
        self._delete_record(spec.name, record, user_id)

    def merge(
        self, spec: ObjectSpec, master_id: str, merged_ids: list[str], fields: dict[str, Any], user_id: str
    ) -> None:
        """Merge up to two records into the master, as the SOAP merge() call does: each merged record's
        children get the master as parent (their automation does not run), the merged records are
        deleted with MasterRecordId = the master, then the master is updated with `fields` like a save."""
        if spec.name not in MERGEABLE_OBJECTS:
            raise field_error(400, "INVALID_TYPE", f"merge is not supported on {spec.name}", [])
        if not 1 <= len(merged_ids) <= MAX_MERGED_RECORDS or len(set(merged_ids)) != len(merged_ids):
            raise field_error(
                400, "INVALID_FIELD", "merge takes one or two distinct records besides the master", []
            )
        if master_id in merged_ids:
            raise field_error(400, "INVALID_ID_FIELD", "the master record cannot be merged into itself", [])
        self.require_live(spec.name, master_id)
        losers = [self.require_live(spec.name, record_id) for record_id in merged_ids]
        self._parse_body(spec, fields, creating=False)  # refuse a bad field before anything changes
        for loser in losers:
            for child_type, field_name in MERGE_CHILDREN[spec.name]:
                for child in self.live(child_type):
                    if child[field_name] == loser["Id"]:
                        before = dict(child)
                        child[field_name] = master_id
                        self._compute_formulas(child_type, child)
                        self._touch(child, user_id)
                        self.events.append(
                            ChangeEvent("updated", child_type, child["Id"], before, dict(child), "reparent")
                        )
        for loser in losers:
            before = dict(loser)
            loser["IsDeleted"] = True
            loser["MasterRecordId"] = master_id
            self._touch(loser, user_id)
            self.events.append(ChangeEvent("deleted", spec.name, loser["Id"], before, dict(loser)))
        self.update(spec, master_id, fields, user_id)

    # --- body parsing and checks -----------------------------------------------------------------

    def _blank(self, spec: ObjectSpec) -> Record:
        return {
            field_spec.name: (False if field_spec.type is FieldType.BOOLEAN else None)
            for field_spec in spec.fields
        }

    @staticmethod
    def _system_values(record_id: str, user_id: str, when: Any) -> Record:
        return {
            "Id": record_id,
            "IsDeleted": False,
            "CreatedDate": when,
            "CreatedById": user_id,
            "LastModifiedDate": when,
            "LastModifiedById": user_id,
            "SystemModstamp": when,
        }

    @staticmethod
    def _touch(record: Record, user_id: str) -> None:
        when = now_utc()
        record["LastModifiedDate"] = when
        record["LastModifiedById"] = user_id
        record["SystemModstamp"] = when

    def _parse_body(self, spec: ObjectSpec, body: dict[str, Any], *, creating: bool) -> Record:
        values: Record = {}
        refused: list[str] = []
        for key, raw in body.items():
            if key == "attributes":
                continue
            field_spec = spec.field(key)
            if field_spec is None:
                # Salesforce's answer carries no "fields" here (see the README, "Unknown fields").
                raise api_error(
                    400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {spec.name}"
                )
            if creating and field_spec.name == "Id":
                raise field_error(
                    400, "INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"]
                )
            if not (field_spec.createable if creating else field_spec.updateable):
                refused.append(field_spec.name)
                continue
            values[field_spec.name] = coerce_input(field_spec, raw)
        if refused:
            raise field_error(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(refused)}. Please check the security settings "
                "of this field and verify that it is read/write for your profile or permission set.",
                refused,
            )
        return values

    @staticmethod
    def _check_required(spec: ObjectSpec, record: Record, *, creating: bool) -> None:
        missing = [
            field_spec.name
            for field_spec in spec.fields
            if field_spec.required
            and (creating or field_spec.updateable)
            and record.get(field_spec.name) is None
        ]
        if missing:
            raise field_error(
                400, "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing
            )

    def _check_references(self, spec: ObjectSpec, values: Record) -> None:
        for name, value in values.items():
            field_spec = spec.field(name)
            if field_spec is None or field_spec.type is not FieldType.REFERENCE or value is None:
                continue
            target = self.get(field_spec.reference_to or "", value)
            if target is None or target["IsDeleted"]:
                raise field_error(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [name])

    def _check_validation_rules(self, spec: ObjectSpec, record: Record) -> None:
        for rule in self.validation_rules:
            if rule.object_type != spec.name:
                continue
            matches = True
            for name, expected in rule.when.items():
                field_spec = spec.field(name)
                if field_spec is None or json_value(field_spec, record.get(field_spec.name)) != expected:
                    matches = False
                    break
            if matches:
                fields = [rule.error_field] if rule.error_field else []
                raise field_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, fields)

    def _check_custom_errors(
        self, spec: ObjectSpec, record: Record, before: Record | None, user_id: str
    ) -> None:
        """The before-save flows with a Custom Error: the first whose entry formula holds refuses the save."""
        for rule in self.custom_errors:
            if rule.object_type != spec.name or not (rule.on_create if before is None else rule.on_update):
                continue
            related = self._related(spec.name, record)
            if parse_formula(rule.formula).evaluate(
                record,
                before,
                is_new=before is None,
                permissions=rule.permissions_of(user_id),
                related=related,
            ):
                message = render_merge_text(rule.message, record, related=related)
                raise field_error(400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", message, [])

    # --- formula fields and parent records -----------------------------------------------------------

    def _related(self, object_type: str, record: Record) -> Callable[[str], Record | None]:
        """The record a lookup path of `record` points to ("Account" -> its Account), or None."""

        def related(path: str) -> Record | None:
            spec: ObjectSpec | None = self.schema.object(object_type)
            current: Record | None = record
            for relationship in path.split("."):
                lookup = spec.relationship(relationship) if spec is not None else None
                if lookup is None or lookup.reference_to is None or current is None:
                    return None
                target = current.get(lookup.name)
                parent = self.get(lookup.reference_to, target) if target else None
                if parent is None or parent["IsDeleted"]:
                    return None
                spec, current = self.schema.object(lookup.reference_to), parent
            return current

        return related

    def _compute_formulas(self, object_type: str, record: Record) -> None:
        for field_spec, formula in self._formulas.get(object_type, ()):
            record[field_spec.name] = formula.value(
                record,
                related=self._related(object_type, record),
                blanks_as_zero=field_spec.formula_blanks_as_zero,
            )

    def _refresh_children(self, object_type: str, record: Record) -> None:
        """The formula fields of the records that read `record` through a lookup (its Opportunities'
        formulas reading Account fields, say)."""
        for child_type, reference in self._formula_children.get(object_type, ()):
            for child in self.live(child_type):
                if child[reference] == record["Id"]:
                    self._compute_formulas(child_type, child)

    # --- per-object rules ---------------------------------------------------------------------------

    def _before_save(self, spec: ObjectSpec, record: Record, values: Record, before: Record | None) -> None:
        if spec.name == "Contact":
            record["Name"] = " ".join(part for part in (record["FirstName"], record["LastName"]) if part)
        elif spec.name == "Opportunity":
            self._derive_opportunity(record, values, before)
        elif spec.name == "PricebookEntry":
            self._derive_pricebook_entry(record, values, before)
        elif spec.name == "OpportunityLineItem":
            self._derive_line_item(record, values, before)
        elif spec.name == "Pricebook2" and before is None:
            record["IsStandard"] = False

    def _after_save(self, spec: ObjectSpec, record: Record, before: Record | None, user_id: str) -> None:
        if spec.name == "OpportunityLineItem":
            self._roll_up_opportunity(record["OpportunityId"], user_id)
        elif spec.name == "Product2" and before is not None:
            self._refresh_product_copies(record)
        elif spec.name == "Opportunity" and before is not None and before["Name"] != record["Name"]:
            for line in self.live("OpportunityLineItem"):
                if line["OpportunityId"] == record["Id"]:
                    product = self.get("Product2", line["Product2Id"])
                    line["Name"] = f"{record['Name']} {product['Name'] if product else ''}".strip()

    def _derive_opportunity(self, record: Record, values: Record, before: Record | None) -> None:
        if before is None or "StageName" in values:
            stage = STAGES_BY_NAME.get(record["StageName"])
            if stage is None:
                raise field_error(
                    400,
                    "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                    f"Stage: bad value for restricted picklist field: {record['StageName']}",
                    ["StageName"],
                )
            record["IsClosed"] = stage.is_closed
            record["IsWon"] = stage.is_won
            record["ForecastCategoryName"] = stage.forecast_category
            if "Probability" not in values:
                record["Probability"] = float(stage.probability)
        if record["HasOpportunityLineItem"]:
            record["Amount"] = self._line_total(record["Id"])
        self._derive_expected_revenue(record)

    @staticmethod
    def _derive_expected_revenue(record: Record) -> None:
        amount, probability = record["Amount"], record["Probability"]
        record["ExpectedRevenue"] = (
            None
            if amount is None or probability is None
            else money(Decimal(str(amount)) * Decimal(str(probability)) / 100)
        )

    def _line_total(self, opportunity_id: str) -> float:
        return money(
            sum(
                (
                    Decimal(str(line["TotalPrice"] or 0))
                    for line in self.live("OpportunityLineItem")
                    if line["OpportunityId"] == opportunity_id
                ),
                Decimal(0),
            )
        )

    def _standard_entry(self, product_id: str) -> Record | None:
        for entry in self.live("PricebookEntry"):
            if entry["Product2Id"] == product_id and entry["Pricebook2Id"] == self.standard_pricebook_id:
                return entry
        return None

    def _derive_pricebook_entry(self, record: Record, values: Record, before: Record | None) -> None:
        product = self.require_live("Product2", record["Product2Id"])
        record["Name"] = product["Name"]
        record["ProductCode"] = product["ProductCode"]
        standard = record["Pricebook2Id"] == self.standard_pricebook_id
        if before is None:
            for entry in self.live("PricebookEntry"):
                if (
                    entry["Product2Id"] == record["Product2Id"]
                    and entry["Pricebook2Id"] == record["Pricebook2Id"]
                ):
                    raise field_error(
                        400, "DUPLICATE_VALUE", "This price definition already exists in this price book", []
                    )
            if not standard and self._standard_entry(record["Product2Id"]) is None:
                raise field_error(
                    400, "STANDARD_PRICE_NOT_DEFINED", "No standard price defined for this product", []
                )
        if record["UseStandardPrice"]:
            if standard:
                raise integrity_error(
                    "UseStandardPrice (cannot be set on a standard price book entry)", ["UseStandardPrice"]
                )
            standard_entry = self._standard_entry(record["Product2Id"])
            if standard_entry is not None:
                record["UnitPrice"] = standard_entry["UnitPrice"]

    def _derive_line_item(self, record: Record, values: Record, before: Record | None) -> None:
        opportunity = self.require_live("Opportunity", record["OpportunityId"])
        if before is None:
            entry = self._line_item_entry(record, opportunity)
            if not entry["IsActive"]:
                raise integrity_error("PricebookEntryId (pricebook entry is inactive)", ["PricebookEntryId"])
            if opportunity["Pricebook2Id"] is None:
                opportunity["Pricebook2Id"] = entry["Pricebook2Id"]
            elif opportunity["Pricebook2Id"] != entry["Pricebook2Id"]:
                raise integrity_error(
                    "PricebookEntryId (pricebook entry is in a different pricebook than the one assigned "
                    "to the opportunity)",
                    ["PricebookEntryId"],
                )
            product = self.require_live("Product2", entry["Product2Id"])
            record["PricebookEntryId"] = entry["Id"]
            record["Product2Id"] = product["Id"]
            record["ProductCode"] = product["ProductCode"]
            record["Name"] = f"{opportunity['Name']} {product['Name']}"
            record["ListPrice"] = entry["UnitPrice"]
        self._price_line_item(record, values, creating=before is None)

    def _line_item_entry(self, record: Record, opportunity: Record) -> Record:
        if record["PricebookEntryId"] is not None:
            entry = self.require_live("PricebookEntry", record["PricebookEntryId"])
            if record["Product2Id"] is not None and record["Product2Id"] != entry["Product2Id"]:
                raise integrity_error(
                    "Product2Id (product does not match the price book entry)", ["Product2Id"]
                )
            return entry
        if record["Product2Id"] is None:
            raise field_error(
                400,
                "REQUIRED_FIELD_MISSING",
                "Required fields are missing: [PricebookEntryId]",
                ["PricebookEntryId"],
            )
        pricebook_id = opportunity["Pricebook2Id"] or self.standard_pricebook_id
        for entry in self.live("PricebookEntry"):
            if entry["Product2Id"] == record["Product2Id"] and entry["Pricebook2Id"] == pricebook_id:
                return entry
        raise integrity_error(
            "Product2Id (no price book entry for this product in the opportunity's price book)",
            ["Product2Id"],
        )

    @staticmethod
    def _price_line_item(record: Record, values: Record, *, creating: bool) -> None:
        unit_given = values.get("UnitPrice") is not None
        total_given = values.get("TotalPrice") is not None
        if unit_given and total_given:
            raise integrity_error(
                "TotalPrice (Total Price and Unit Price cannot both be specified)",
                ["TotalPrice", "UnitPrice"],
            )
        if creating and not unit_given and not total_given:
            raise integrity_error(
                "UnitPrice, TotalPrice (must specify either UnitPrice or TotalPrice)",
                ["UnitPrice", "TotalPrice"],
            )
        quantity = Decimal(str(record["Quantity"]))
        if quantity == 0:
            raise integrity_error("Quantity (quantity must be nonzero)", ["Quantity"])
        discount = Decimal(str(record["Discount"] or 0))
        if discount < 0 or discount > 100:
            raise integrity_error("Discount (discount must be between 0 and 100)", ["Discount"])
        factor = 1 - discount / 100
        if total_given:
            if factor == 0:
                raise integrity_error(
                    "TotalPrice (cannot derive a unit price at a 100% discount)", ["TotalPrice"]
                )
            record["UnitPrice"] = money(Decimal(str(record["TotalPrice"])) / (quantity * factor))
        if record["UnitPrice"] is None:
            raise integrity_error("UnitPrice (must specify either UnitPrice or TotalPrice)", ["UnitPrice"])
        unit_price = Decimal(str(record["UnitPrice"]))
        record["Subtotal"] = money(quantity * unit_price)
        record["TotalPrice"] = money(quantity * unit_price * factor)

    def _roll_up_opportunity(self, opportunity_id: str, user_id: str) -> None:
        """Recompute Amount and HasOpportunityLineItem; a change updates the Opportunity like a save."""
        opportunity = self.get("Opportunity", opportunity_id)
        if opportunity is None or opportunity["IsDeleted"]:
            return
        before = dict(opportunity)
        has_lines = any(line["OpportunityId"] == opportunity_id for line in self.live("OpportunityLineItem"))
        opportunity["HasOpportunityLineItem"] = has_lines
        if has_lines or before["HasOpportunityLineItem"]:
            opportunity["Amount"] = self._line_total(opportunity_id)
        self._derive_expected_revenue(opportunity)
        self._compute_formulas("Opportunity", opportunity)
        watched = ("Amount", "HasOpportunityLineItem", "Pricebook2Id")
        if any(before[name] != opportunity[name] for name in watched):
            self._touch(opportunity, user_id)
            self.events.append(
                ChangeEvent("updated", "Opportunity", opportunity_id, before, dict(opportunity), "rollup")
            )

    def _refresh_product_copies(self, product: Record) -> None:
        for entry in self.live("PricebookEntry"):
            if entry["Product2Id"] == product["Id"]:
                entry["Name"] = product["Name"]
                entry["ProductCode"] = product["ProductCode"]
        for line in self.live("OpportunityLineItem"):
            if line["Product2Id"] == product["Id"]:
                line["ProductCode"] = product["ProductCode"]
                opportunity = self.get("Opportunity", line["OpportunityId"])
                line["Name"] = f"{opportunity['Name'] if opportunity else ''} {product['Name']}".strip()

    # --- deletes ------------------------------------------------------------------------------------

    def _lines_using(self, field_name: str, ids: set[str]) -> list[Record]:
        return [line for line in self.live("OpportunityLineItem") if line[field_name] in ids]

    def _check_deletable(self, spec: ObjectSpec, record: Record) -> None:
        in_use: list[Record] = []
        if spec.name == "Pricebook2":
            if record["IsStandard"]:
                raise field_error(400, "DELETE_FAILED", "You can't delete the standard price book.", [])
            entries = {
                entry["Id"] for entry in self.live("PricebookEntry") if entry["Pricebook2Id"] == record["Id"]
            }
            in_use = self._lines_using("PricebookEntryId", entries)
        elif spec.name == "Product2":
            in_use = self._lines_using("Product2Id", {record["Id"]})
        elif spec.name == "PricebookEntry":
            in_use = self._lines_using("PricebookEntryId", {record["Id"]})
        if in_use:
            raise field_error(
                400,
                "DELETE_FAILED",
                f"Your attempt to delete {record.get('Name') or record['Id']} could not be completed because "
                "it is associated with opportunity products.",
                [],
            )

    def _delete_record(self, object_type: str, record: Record, user_id: str) -> None:
        before = dict(record)
        record["IsDeleted"] = True
        self._touch(record, user_id)
        self.events.append(ChangeEvent("deleted", object_type, record["Id"], before, dict(record)))
        for child_type, field_name in CASCADES.get(object_type, ()):
            for child in self.live(child_type):
                if child[field_name] == record["Id"]:
                    self._delete_record(child_type, child, user_id)
        if object_type == "OpportunityLineItem":
            self._roll_up_opportunity(record["OpportunityId"], user_id)


def _formula_fields(
    schema: Schema,
) -> tuple[dict[str, tuple[tuple[FieldSpec, Formula], ...]], dict[str, tuple[tuple[str, str], ...]]]:
    """Object -> its formula fields with their parsed formulas; and parent object -> (child object, the
    child's reference field) for each lookup a formula reads through. A formula reading through more than
    one lookup is refused (its value would not follow the grandparent's changes)."""
    formulas: dict[str, tuple[tuple[FieldSpec, Formula], ...]] = {}
    children: dict[str, list[tuple[str, str]]] = {}
    for object_spec in schema.objects.values():
        found = [
            (field_spec, parse_field_formula(field_spec.formula))
            for field_spec in object_spec.fields
            if field_spec.formula is not None
        ]
        if not found:
            continue
        formulas[object_spec.name] = tuple(found)
        for field_spec, formula in found:
            for path in sorted(formula.relationships):
                lookup = object_spec.relationship(path)
                if lookup is None or lookup.reference_to is None:
                    raise ValueError(
                        f"{object_spec.name}.{field_spec.name}: the formula reads through {path}, "
                        "which is not a lookup of the object (one lookup deep is supported)"
                    )
                pair = (object_spec.name, lookup.name)
                if pair not in children.setdefault(lookup.reference_to, []):
                    children[lookup.reference_to].append(pair)
    return formulas, {parent: tuple(pairs) for parent, pairs in children.items()}


# What Salesforce deletes along with a record.
CASCADES: dict[str, tuple[tuple[str, str], ...]] = {
    "Account": (("Contact", "AccountId"), ("Opportunity", "AccountId")),
    "Opportunity": (("OpportunityLineItem", "OpportunityId"),),
    "Product2": (("PricebookEntry", "Product2Id"),),
    "Pricebook2": (("PricebookEntry", "Pricebook2Id"),),
}


def record_json(
    spec: ObjectSpec, record: Record, api_version: str, fields: list[FieldSpec] | None = None
) -> dict[str, Any]:
    """A record as the REST API returns it: attributes first, then the fields (all, or the ones asked for)."""
    payload: dict[str, Any] = {"attributes": record_attributes(spec.name, record["Id"], api_version)}
    for field_spec in fields if fields is not None else spec.fields:
        payload[field_spec.name] = json_value(field_spec, record.get(field_spec.name))
    return payload


def record_attributes(object_type: str, record_id: str, api_version: str) -> dict[str, str]:
    return {"type": object_type, "url": f"/services/data/v{api_version}/sobjects/{object_type}/{record_id}"}
