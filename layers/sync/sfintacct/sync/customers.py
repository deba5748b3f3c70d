"""Which Intacct customer a Salesforce Account is, and what must be written so Intacct matches it.

The one path both workers use ("ensure the customer"):

- crosswalk hit: the customer is known. Update it, unless the mapped data is what was sent last
  (a digest in the crosswalk; the Account's LastModifiedDate alone cannot tell, since our own
  write-back changes it).
- crosswalk miss: look the customer up by the Salesforce id custom field. Found: adopt it (and bring
  it up to date). Not found: create it. With the "salesforce_id" id strategy the CUSTOMERID is the
  Account id, so the create can share a request with the order.

Control ids: an update's is the Account id and its LastModifiedDate (a redelivery of the same change
sends the same id and Intacct refuses the repeat under uniqueid=true; a later change gets a new one).
A create's is the Account id and a digest of the customer's data, not the LastModifiedDate: an edit
that does not touch the customer's data (our own write-back, a field we do not map) cannot give a
create that may still be running a second, accepted control id; corrected data after a refusal can.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sfintacct.crosswalk import CrosswalkEntry, CrosswalkKind, MappingConflict, StaleUpdate
from sfintacct.intacct.models import CustomerUpdate, NewCustomer
from sfintacct.mapping import SyncMapping
from sfintacct.sync.errors import PermanentSyncError
from sfintacct.sync.ports import CrosswalkPort, IntacctPort
from sfintacct.sync.salesforce_values import change_stamp, modified_at

DIGEST_ATTRIBUTE = "digest"


class CustomerAction(StrEnum):
    UP_TO_DATE = "up_to_date"
    UPDATE = "update"
    ADOPT = "adopt"
    CREATE = "create"


@dataclass(frozen=True)
class CustomerPlan:
    """What to send for one Account. `customer_id` is None only for a create Intacct numbers."""

    account_id: str
    account_modified_at: datetime | None
    action: CustomerAction
    customer_id: str | None
    write: NewCustomer | CustomerUpdate | None
    control_id: str
    digest: str
    warnings: tuple[str, ...] = ()  # values shortened to Intacct's length


def plan_customer(
    account: dict[str, Any],
    known: CrosswalkEntry | None,
    *,
    mapping: SyncMapping,
    intacct: IntacctPort,
) -> CustomerPlan:
    """Create, update, adopt or leave the customer of an Account (reads Intacct on a crosswalk miss)."""
    account_id = str(account["Id"])
    modified = modified_at(account)
    stamp = change_stamp(modified)
    notes: list[str] = []
    digest = customer_digest(account, mapping, notes)
    warnings = tuple(notes)
    if known is not None and known.intacct_id:
        applied = known.source_modified_at
        older_copy = modified is not None and applied is not None and modified < applied
        if known.attributes.get(DIGEST_ATTRIBUTE) == digest or older_copy:
            # Up to date, or this copy of the Account is older than the change sent last: send nothing.
            return CustomerPlan(
                account_id, modified, CustomerAction.UP_TO_DATE, known.intacct_id, None, "", digest, warnings
            )
        return CustomerPlan(
            account_id,
            modified,
            CustomerAction.UPDATE,
            known.intacct_id,
            mapping.customer_update(account, known.intacct_id),
            f"customer-update-{account_id}-{stamp}",
            digest,
            warnings,
        )
    found = intacct.find_customers(mapping.salesforce_id_field, account_id)
    if len(found) > 1:
        ids = ", ".join(customer.customer_id for customer in found)
        raise PermanentSyncError(
            f"several Intacct customers carry {mapping.salesforce_id_field}={account_id} ({ids}); "
            "keep one and clear the field on the others"
        )
    if found:
        customer_id = found[0].customer_id
        return CustomerPlan(
            account_id,
            modified,
            CustomerAction.ADOPT,
            customer_id,
            mapping.customer_update(account, customer_id),
            f"customer-update-{account_id}-{stamp}",
            digest,
            warnings,
        )
    new_customer_id = account_id if mapping.customer_id_strategy == "salesforce_id" else None
    return CustomerPlan(
        account_id,
        modified,
        CustomerAction.CREATE,
        new_customer_id,
        mapping.new_customer(account, new_customer_id),
        f"customer-create-{account_id}-{digest[:16]}",
        digest,
        warnings,
    )


def find_customer_id(account_id: str, *, mapping: SyncMapping, intacct: IntacctPort) -> str | None:
    """The CUSTOMERID carrying this Account id in the Salesforce id field (after an unknown outcome)."""
    found = intacct.find_customers(mapping.salesforce_id_field, account_id)
    return found[0].customer_id if len(found) == 1 else None


def record_customer(plan: CustomerPlan, customer_id: str, crosswalk: CrosswalkPort) -> None:
    """Remember which customer the Account is and which change was applied (older ones are ignored)."""
    try:
        crosswalk.put_mapping(
            plan.account_id,
            CrosswalkKind.CUSTOMER,
            customer_id,
            plan.account_modified_at,
            attributes={DIGEST_ATTRIBUTE: plan.digest},
        )
    except StaleUpdate:
        pass  # a newer change was applied meanwhile; it already holds the newer data
    except MappingConflict as conflict:
        current = conflict.current.intacct_id if conflict.current else None
        raise PermanentSyncError(
            f"Account {plan.account_id} is mapped to Intacct customer {current}, not {customer_id}"
        ) from conflict


def customer_digest(account: dict[str, Any], mapping: SyncMapping, notes: list[str] | None = None) -> str:
    """A fingerprint of what the mapping makes of the Account (without the CUSTOMERID); `notes` collects
    the values shortened to Intacct's length."""
    content = mapping.new_customer(account, None, notes).model_dump_json(exclude={"customer_id"})
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:32]
