"""The sync itself: an Account becomes an Intacct customer, a closed-won Opportunity an Intacct order.

`SyncService.handle(request)` runs one SyncRequest to an outcome, logs it in the sync log, and
returns it; when the failure is transient it raises instead, so the queue delivers the message again
(and, after the last receive, keeps it in the dead-letter queue; the record says so).

Exactly once, whatever happens (ARCHITECTURE §2):
- the crosswalk tells whether the order exists (COMPLETE) or someone is creating it (CLAIMED);
- a worker claims the Opportunity before it writes to Intacct; the claim is held per message
  (producer id), so the same message delivered again takes its own claim back at once, and its lease
  outlasts the longest attempt (worker timeout + Intacct timeout: a template test checks it);
- an Opportunity found CLAIMED (an earlier attempt stopped half-way) is first looked up in Intacct by
  its reference (PONUMBER = Opportunity id) before anything is sent again;
- after ANY failed order write (whatever Intacct's error number or text: how it words the refusal of a
  repeated control id is not documented) the order is looked up by its reference before anything is
  decided, and an order found there is the Opportunity's order: synced, not failed, not created again;
- the order's Intacct control id is the Opportunity id and the claim's attempt number, sent with
  uniqueid=true: it stays the same however the Opportunity is edited meanwhile, so a create repeated
  while an earlier one may still commit is refused by Intacct rather than applied twice; it changes
  only after Intacct refused the create and the claim was released;
- a record is done only when both sides know: each delivery checks that Salesforce shows the Intacct
  ids and the Synced status, and writes them again where an earlier write-back did not land.

`SyncService.checkpoint(step, record_id)` is called between the steps. It does nothing; the local
stack's worker processes replace it to kill themselves there (crash tests), so it is a method that a
test harness can patch on the class, never a setting of the product.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, Literal

from sfintacct.crosswalk import AlreadyClaimed, CrosswalkEntry, CrosswalkKind, CrosswalkPermanentError
from sfintacct.faults import ConfigurationFault
from sfintacct.intacct.client import SALES_DOCUMENT_LOOKUP_FIELDS, OrderRetirement
from sfintacct.intacct.errors import AlreadyApplied, DuplicateRecord, OutcomeUnknown, PermanentIntacctError
from sfintacct.intacct.models import CustomerUpdate, NewCustomer, SalesDocument, SalesTransaction
from sfintacct.mapping import MappingError, RecordDataError, SyncMapping
from sfintacct.salesforce.errors import PermanentSalesforceError
from sfintacct.salesforce.errors import RecordNotFound as SalesforceRecordNotFound
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate
from sfintacct.sync import order_fingerprint, write_back
from sfintacct.sync.customers import (
    CustomerAction,
    CustomerPlan,
    find_customer_id,
    plan_customer,
    record_customer,
)
from sfintacct.sync.errors import PermanentSyncError, TransientSyncError, describe
from sfintacct.sync.order_fingerprint import OrderFingerprint, fingerprint
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.ports import CrosswalkPort, IntacctPort, SalesforcePort, SyncLogPort
from sfintacct.sync.salesforce_values import change_stamp, is_won, modified_at
from sfintacct.sync_request import SyncRequest

logger = logging.getLogger(__name__)

CHECKPOINTS = (
    "before_intacct_write",
    "after_intacct_write",
    "before_crosswalk_write",
    "after_crosswalk_write",
    "before_write_back",
    "after_write_back",
)

PERMANENT_ERRORS: tuple[type[Exception], ...] = (
    PermanentSyncError,
    PermanentIntacctError,
    PermanentSalesforceError,
    CrosswalkPermanentError,
    MappingError,  # a ConfigurationFault: it waits, but the claim is released like a refusal's
    RecordDataError,
)


class SyncService:
    def __init__(
        self,
        *,
        intacct: IntacctPort,
        salesforce: SalesforcePort,
        crosswalk: CrosswalkPort,
        sync_log: SyncLogPort,
        mapping: SyncMapping,
        transaction_type: str,
        claim_lease_seconds: float,
        lost_deal_order: Literal["close", "delete"] = "close",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.intacct = intacct
        self.salesforce = salesforce
        self.crosswalk = crosswalk
        self.sync_log = sync_log
        self.mapping = mapping
        self.transaction_type = transaction_type
        self.claim_lease_seconds = claim_lease_seconds
        self.lost_deal_order = lost_deal_order
        self.clock = clock

    def checkpoint(self, step: str, record_id: str) -> None:
        """Between two steps of the work on `record_id` (one of CHECKPOINTS): nothing happens here."""

    # ------------------------------------------------------------------ one request

    def handle(self, request: SyncRequest, *, final_attempt: bool = False) -> SyncOutcome:
        """Sync one record; log and return the outcome, or raise a transient error to have it retried."""
        try:
            if request.object_type == "Account":
                outcome = self.sync_account(request)
            else:
                outcome = self.sync_opportunity(request)
        except Exception as error:
            outcome = self._failure(request, error, final_attempt=final_attempt)
            self.sync_log.record(outcome, producer_id=request.producer_id, source=request.source)
            if outcome.retried:
                raise
            return outcome
        self.sync_log.record(outcome, producer_id=request.producer_id, source=request.source)
        return outcome

    # ------------------------------------------------------------------ Account -> customer

    def sync_account(self, request: SyncRequest) -> SyncOutcome:
        account_id = request.record_id
        known = self.crosswalk.get(account_id, CrosswalkKind.CUSTOMER)
        applied = known.source_modified_at if known else None
        # Only an older change is dropped unread; the same change again may be the retry of a
        # write-back that did not land, so it is checked against Salesforce below.
        if (
            known
            and known.intacct_id
            and applied
            and request.last_modified
            and request.last_modified < applied
        ):
            return self._account_outcome(
                OutcomeStatus.SKIPPED,
                Reason.OLDER_CHANGE,
                account_id,
                known.intacct_id,
                f"change of {request.last_modified.isoformat()} is older than the one applied "
                f"({applied.isoformat()})",
            )
        try:
            account = self.salesforce.fetch_account(account_id)
        except SalesforceRecordNotFound as error:
            return self._account_gone(account_id, known, error)
        known, merge_notes = self._take_over_merged_customers(account, known)
        if (
            (known is None or not known.intacct_id)
            and not account.get("Intacct_Customer_Id__c")
            and not self.mapping.wants_customer_before_a_deal(account)
        ):
            return self._account_outcome(
                OutcomeStatus.SKIPPED,
                Reason.PROSPECT,
                account_id,
                None,
                "no Intacct customer until the Account's first deal is won"
                + (
                    f" or it matches customer.create_when ({self.mapping.customer.create_when.field})"
                    if self.mapping.customer.create_when
                    else ""
                ),
            )
        plan = plan_customer(account, known, mapping=self.mapping, intacct=self.intacct)
        with self._customer_writer(plan, known, account, request.producer_id) as plan:
            customer_id = self._apply_customer_alone(plan)
        warnings = [*plan.warnings, *merge_notes]
        if plan.write is not None or not shows_synced(
            account, "Intacct_Customer_Id__c", customer_id, warnings
        ):
            self._write_back(
                account_id, [write_back.account_synced(account_id, customer_id, self.clock(), warnings)]
            )
        if plan.action is CustomerAction.UP_TO_DATE:
            return self._account_outcome(
                OutcomeStatus.ALREADY_SYNCED,
                Reason.UP_TO_DATE,
                account_id,
                customer_id,
                "customer is up to date",
            )
        reason = {
            CustomerAction.CREATE: Reason.CREATED,
            CustomerAction.ADOPT: Reason.ADOPTED,
            CustomerAction.UPDATE: Reason.UPDATED,
        }[plan.action]
        return self._account_outcome(
            OutcomeStatus.SYNCED, reason, account_id, customer_id, f"customer {reason}"
        )

    def _account_gone(self, account_id: str, known: CrosswalkEntry | None, error: Exception) -> SyncOutcome:
        """The Account is no longer readable: merged into another, deleted, or never visible to us."""
        removed = self.salesforce.removed_account(account_id)
        customer_id = known.intacct_id if known else None
        if removed and removed.get("MasterRecordId"):
            master = removed["MasterRecordId"]
            return self._account_outcome(
                OutcomeStatus.SKIPPED,
                Reason.ACCOUNT_MERGED,
                account_id,
                customer_id,
                f"Account was merged into {master}; its Intacct customer goes with {master}",
            )
        if removed and removed.get("IsDeleted") is True:
            message = (
                f"Account was deleted in Salesforce; Intacct customer {customer_id} is left as it is "
                "(finance decides whether to inactivate it)"
                if customer_id
                else "Account was deleted in Salesforce; it had no Intacct customer"
            )
            logger.warning("Account %s: %s", account_id, message)
            return self._account_outcome(
                OutcomeStatus.SKIPPED, Reason.ACCOUNT_DELETED, account_id, customer_id, message
            )
        return self._account_outcome(OutcomeStatus.SKIPPED, Reason.NOT_FOUND, account_id, None, str(error))

    def _customer_entry(self, account: dict[str, Any]) -> tuple[CrosswalkEntry | None, list[str]]:
        """The Account's customer entry for a deal; an Account the crosswalk does not know yet may be the
        survivor of a merge, which takes over a merged Account's customer rather than get a new one."""
        known = self.crosswalk.get(str(account["Id"]), CrosswalkKind.CUSTOMER)
        if known is not None and known.intacct_id:
            return known, []
        return self._take_over_merged_customers(account, known)

    def _take_over_merged_customers(
        self, account: dict[str, Any], known: CrosswalkEntry | None
    ) -> tuple[CrosswalkEntry | None, list[str]]:
        """After a merge, the surviving Account owns the customer that holds the history; nothing is
        duplicated. Returns the Account's crosswalk entry (new when it took a merged Account's customer)
        and the notes the Account shows (when two customers exist for it now)."""
        account_id = str(account["Id"])
        merged = self.salesforce.merged_accounts(account_id)
        merged_customers: list[tuple[str, str]] = []
        for loser in merged:
            entry = self.crosswalk.get(str(loser["Id"]), CrosswalkKind.CUSTOMER)
            customer_id = (entry.intacct_id if entry else None) or loser.get("Intacct_Customer_Id__c")
            if customer_id:
                merged_customers.append((str(loser["Id"]), str(customer_id)))
        if not merged_customers:
            return known, []
        own = (known.intacct_id if known else None) or account.get("Intacct_Customer_Id__c")
        if not own:
            loser_id, own = merged_customers[0]
            # The customer keeps its history; from now on it is this Account's (the next write sets its
            # Salesforce id field to this Account).
            known = self.crosswalk.put_mapping(account_id, CrosswalkKind.CUSTOMER, own, None)
            logger.info(
                "Account %s took over Intacct customer %s of merged Account %s", account_id, own, loser_id
            )
        others = [(loser, customer) for loser, customer in merged_customers if customer != own]
        notes = [
            f"Two Intacct customers exist for this Account after a merge: it keeps {own}; {customer} "
            f"(of merged Account {loser}) is left as it is for finance to merge or inactivate"
            for loser, customer in others
        ]
        return known, notes

    @contextlib.contextmanager
    def _customer_writer(
        self, plan: CustomerPlan, known: CrosswalkEntry | None, account: dict[str, Any], owner: str
    ) -> Iterator[CustomerPlan]:
        """Hold the Account's customer-write lock while the plan's customer write is sent and recorded.

        Two writes of one customer never overlap, so an older copy of the Account can never land in
        Intacct after a newer one. Yields the plan to send: made again from the crosswalk as it is once
        the lock is held, if another worker recorded a change meanwhile (a plan from an older copy of the
        Account then sends nothing). When the write's outcome is unknown (it may still commit), the lock
        is kept until its lease ends; a killed worker's lock ends the same way.
        """
        if plan.write is None:
            yield plan
            return
        account_id = plan.account_id
        with self._locked(account_id, CrosswalkKind.CUSTOMER_WRITE, owner, "writing the customer of Account"):
            current = self.crosswalk.get(account_id, CrosswalkKind.CUSTOMER)
            if current != known:
                plan = plan_customer(account, current, mapping=self.mapping, intacct=self.intacct)
            yield plan

    def _apply_customer_alone(self, plan: CustomerPlan) -> str:
        """Send the plan's customer write in its own request and record it; returns the CUSTOMERID."""
        if plan.write is None:
            assert plan.customer_id is not None
            return plan.customer_id
        self.checkpoint("before_intacct_write", plan.account_id)
        customer_id = self._write_customer(plan)
        self.checkpoint("after_intacct_write", plan.account_id)
        self.checkpoint("before_crosswalk_write", plan.account_id)
        record_customer(plan, customer_id, self.crosswalk)
        self.checkpoint("after_crosswalk_write", plan.account_id)
        return customer_id

    def _write_customer(self, plan: CustomerPlan) -> str:
        """Send the customer write (Intacct then holds the plan's data); returns the CUSTOMERID."""
        if not isinstance(plan.write, NewCustomer):
            assert plan.write is not None
            assert plan.customer_id is not None
            # AlreadyApplied: this very change was applied before (the control id names it). OutcomeUnknown
            # goes up: the retry sends the same control id, and the change is applied then or refused.
            with contextlib.suppress(AlreadyApplied):
                self.intacct.update_customer(plan.write, control_id=plan.control_id)
            return plan.customer_id
        try:
            reference = self.intacct.create_customer(plan.write, control_id=plan.control_id)
        except (AlreadyApplied, OutcomeUnknown, DuplicateRecord) as error:
            # Sent before, or the outcome is unknown, or created meanwhile: find what Intacct holds.
            found = find_customer_id(plan.account_id, mapping=self.mapping, intacct=self.intacct)
            if found is not None:
                if isinstance(error, DuplicateRecord):
                    # Created meanwhile by another worker, perhaps from older data: send ours now.
                    self._update_created_customer(plan, found)
                return found
            if isinstance(error, OutcomeUnknown):
                raise
            raise TransientSyncError(
                f"Intacct answered {type(error).__name__} for Account {plan.account_id} but no customer "
                f"carries {self.mapping.salesforce_id_field}={plan.account_id}: {error}"
            ) from error
        return reference.customer_id

    def _update_created_customer(self, plan: CustomerPlan, customer_id: str) -> None:
        assert isinstance(plan.write, NewCustomer)
        update = CustomerUpdate.model_validate({**plan.write.model_dump(), "customer_id": customer_id})
        control_id = f"customer-update-{plan.account_id}-{change_stamp(plan.account_modified_at)}"
        with contextlib.suppress(AlreadyApplied):
            self.intacct.update_customer(update, control_id=control_id)

    # ------------------------------------------------------------------ Opportunity -> order

    def sync_opportunity(self, request: SyncRequest) -> SyncOutcome:
        opportunity_id = request.record_id
        known = self.crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
        refused_state = known.refused_source_modified_at if known and not known.is_complete else None
        if refused_state and request.last_modified and request.last_modified <= refused_state:
            # The same state Intacct refused, notified again (a repeat or a replay): nothing is read or
            # sent. A change made since, or a retry asked for (no LastModifiedDate), goes through.
            return self._order_outcome(
                OutcomeStatus.SKIPPED,
                Reason.UNCHANGED_SINCE_REFUSAL,
                opportunity_id,
                f"Intacct refused this Opportunity as of {refused_state.isoformat()} and it has not changed "
                "since; use Retry sync once the cause is fixed",
            )
        try:
            snapshot = self.salesforce.fetch_opportunity(opportunity_id)
        except SalesforceRecordNotFound as error:
            return self._order_outcome(OutcomeStatus.SKIPPED, Reason.NOT_FOUND, opportunity_id, str(error))
        opportunity = snapshot.opportunity
        if known is not None and known.is_complete:
            return self._follow_deal(snapshot, known, request.producer_id)
        if not is_won(opportunity):
            stage = opportunity.get("StageName")
            return self._order_outcome(
                OutcomeStatus.SKIPPED,
                Reason.NOT_WON,
                opportunity_id,
                f"Opportunity is not won (stage {stage!r}); nothing is sent to Intacct",
                account_id=snapshot.account_id,
            )
        if snapshot.account is None:
            raise PermanentSyncError(f"Opportunity {opportunity_id} has no Account, so there is no customer")
        owner = request.producer_id
        try:
            claim = self.crosswalk.claim(opportunity_id, CrosswalkKind.ORDER, owner, self.claim_lease_seconds)
        except AlreadyClaimed as error:
            raise TransientSyncError(f"another worker is creating the order of {opportunity_id}") from error
        if claim.is_complete:
            return self._follow_deal(snapshot, claim, owner)
        try:
            return self._create_order(snapshot, snapshot.account, claim, recovering=known is not None)
        except PERMANENT_ERRORS as error:
            # Nothing was written. Intacct refused the record: free the Opportunity so a corrected one
            # syncs at once, with a new control id. A fault of the set-up is not a refusal of the record:
            # the same state is tried again once the set-up is fixed.
            refused = not isinstance(error, ConfigurationFault)
            self.crosswalk.release(
                opportunity_id,
                CrosswalkKind.ORDER,
                owner,
                refused=refused,
                refused_source_modified_at=modified_at(opportunity) if refused else None,
            )
            raise

    def _create_order(
        self,
        snapshot: OpportunitySnapshot,
        account: dict[str, Any],
        claim: CrosswalkEntry,
        *,
        recovering: bool,
    ) -> SyncOutcome:
        opportunity_id = snapshot.opportunity_id
        owner = claim.claim_owner or ""
        account_id = str(account["Id"])
        if recovering:
            existing = self._find_order(opportunity_id)
            if existing is not None:
                # Sent by an attempt whose answer was lost, perhaps from older data: the crosswalk learns
                # the order without a fingerprint, and the order is then brought up to the deal as it is.
                # The customer's crosswalk entry may be missing too: the next Account sync adopts it.
                completed = self.crosswalk.complete(
                    opportunity_id,
                    CrosswalkKind.ORDER,
                    existing.doc_id,
                    owner,
                    modified_at(snapshot.opportunity),
                    attributes={
                        order_fingerprint.CUSTOMER: existing.customer_id,
                        order_fingerprint.TRANSACTION_TYPE: existing.transaction_type
                        or self.transaction_type,
                    },
                )
                self.checkpoint("after_crosswalk_write", opportunity_id)
                return self._follow_deal(snapshot, completed, owner, reason=Reason.RECOVERED)
        known_customer, merge_notes = self._customer_entry(account)
        plan = plan_customer(account, known_customer, mapping=self.mapping, intacct=self.intacct)
        notes: list[str] = []
        with self._customer_writer(plan, known_customer, account, owner) as locked_plan:
            order_plan = locked_plan
            if locked_plan.customer_id is None:
                # Intacct numbers new customers here: create it first, then the order can name it.
                new_id = self._apply_customer_alone(locked_plan)
                order_plan = replace(locked_plan, customer_id=new_id, write=None)
            customer_id = order_plan.customer_id
            assert customer_id is not None
            transaction_type = self.mapping.transaction_type_for(snapshot.opportunity, self.transaction_type)
            order = self.mapping.sales_transaction(
                snapshot, customer_id=customer_id, transaction_type=transaction_type, notes=notes
            )
            doc_id = self._write_order(snapshot, order_plan, order, claim)
        sent = fingerprint(order, account_id)
        self.crosswalk.complete(
            opportunity_id,
            CrosswalkKind.ORDER,
            doc_id,
            owner,
            modified_at(snapshot.opportunity),
            attributes=sent.attributes(customer_id, transaction_type),
        )
        self.checkpoint("after_crosswalk_write", opportunity_id)
        return self._synced(
            snapshot,
            doc_id,
            customer_id,
            Reason.CREATED,
            warnings=[*notes, *plan.warnings],
            customer_warnings=(*plan.warnings, *merge_notes),
        )

    def _write_order(
        self,
        snapshot: OpportunitySnapshot,
        plan: CustomerPlan,
        order: SalesTransaction,
        claim: CrosswalkEntry,
    ) -> str:
        """Send the order (with the plan's customer write, in one transaction) and record the customer."""
        opportunity_id = snapshot.opportunity_id
        customer_id = order.customer_id
        order_control_id = f"order-{opportunity_id}-{claim.attempt}"
        self.checkpoint("before_intacct_write", opportunity_id)
        try:
            _, doc_id = self.intacct.write_customer_and_order(
                plan.write, order, customer_control_id=plan.control_id, order_control_id=order_control_id
            )
        except Exception as error:
            # Whatever the failure (a repeat refused in whatever words, an unknown outcome, a refusal, a
            # transient error), the order may exist already: sent before by an attempt whose answer was
            # lost, or still being committed. Whatever Intacct holds under the Opportunity's reference is
            # the order; nothing is decided before looking.
            existing = self._find_order(opportunity_id)
            if existing is None:
                if isinstance(error, AlreadyApplied):
                    raise TransientSyncError(
                        f"Intacct says the order of {opportunity_id} was sent before, but no order has "
                        f"reference {opportunity_id} yet: {error}"
                    ) from error
                if isinstance(error, DuplicateRecord):
                    raise TransientSyncError(
                        f"Intacct customer {customer_id} already exists but does not carry "
                        f"{self.mapping.salesforce_id_field}={plan.account_id}; "
                        f"set that field on it to adopt it: {error}"
                    ) from error
                raise
            logger.warning(
                "The order write for %s failed (%s: %s), but Intacct holds %s under its reference: that is "
                "the order",
                opportunity_id,
                type(error).__name__,
                error,
                existing.doc_id,
            )
            # This request's customer write, if any, went down with it: send it alone now.
            self._apply_customer_alone(plan)
            return existing.doc_id
        self.checkpoint("after_intacct_write", opportunity_id)
        self.checkpoint("before_crosswalk_write", opportunity_id)
        if plan.write is not None:
            record_customer(plan, customer_id, self.crosswalk)
        return doc_id

    def _synced(
        self,
        snapshot: OpportunitySnapshot,
        doc_id: str,
        customer_id: str,
        reason: Reason,
        *,
        warnings: list[str],
        customer_warnings: tuple[str, ...] = (),
    ) -> SyncOutcome:
        """Write back that the Opportunity (and its Account) are in Intacct as they are now."""
        opportunity_id = snapshot.opportunity_id
        account = snapshot.account
        assert account is not None
        now = self.clock()
        updates = []
        if reason is not Reason.ORDER_EXISTS or not shows_synced(
            snapshot.opportunity, "Intacct_Order_Id__c", doc_id, warnings
        ):
            updates.append(write_back.opportunity_synced(opportunity_id, doc_id, now, warnings))
        if not shows_synced(account, "Intacct_Customer_Id__c", customer_id, customer_warnings):
            updates.append(write_back.account_synced(str(account["Id"]), customer_id, now, customer_warnings))
        if updates:
            self._write_back(opportunity_id, updates)
        status, message = (
            OutcomeStatus.SYNCED,
            f"{doc_id} for customer {customer_id} ({reason})",
        )
        if reason is Reason.ORDER_EXISTS:
            status, message = (
                OutcomeStatus.ALREADY_SYNCED,
                f"already synced as {doc_id}; no second order is created",
            )
        return self._order_outcome(
            status,
            reason,
            opportunity_id,
            message,
            account_id=str(account["Id"]),
            customer_id=customer_id,
            order_id=doc_id,
        )

    # ------------------------------------------------------------------ a synced deal that changes

    def _follow_deal(
        self,
        snapshot: OpportunitySnapshot,
        known: CrosswalkEntry,
        owner: str,
        *,
        reason: Reason | None = None,
    ) -> SyncOutcome:
        """The Opportunity has an order. Never a second open one: when the deal is as the order holds it,
        only the write-backs are repaired; when it changed, the order follows while it is open in Intacct
        (updated, or replaced when the Account changed or lines went away; closed or deleted when the
        deal is no longer won), and otherwise the Opportunity says what differs."""
        opportunity_id = snapshot.opportunity_id
        stored = known.attributes
        won = is_won(snapshot.opportunity)
        wanted: SalesTransaction | None = None
        notes: list[str] = []
        if won:
            account = snapshot.account
            if account is None:
                raise PermanentSyncError(
                    f"Opportunity {opportunity_id} has no Account, so there is no customer"
                )
            # The document keeps the type it was made as: a deal approved after its order exists gets no
            # invoice besides it (finance converts the order).
            wanted = self.mapping.sales_transaction(
                snapshot, customer_id=str(account["Id"]), transaction_type=self._type_of(known), notes=notes
            )
            if order_fingerprint.is_up_to_date(stored, fingerprint(wanted, str(account["Id"]))):
                customer_id = stored.get(order_fingerprint.CUSTOMER) or ""
                return self._synced(
                    snapshot, known.intacct_id or "", customer_id, Reason.ORDER_EXISTS, warnings=notes
                )
        elif stored.get(order_fingerprint.STATE) in ("closed", "deleted"):
            return self._order_outcome(
                OutcomeStatus.ALREADY_SYNCED,
                Reason.ORDER_RETIRED,
                opportunity_id,
                f"the deal is not won and its order {known.intacct_id} is {stored[order_fingerprint.STATE]}",
                account_id=snapshot.account_id,
                order_id=known.intacct_id,
            )
        with self._locked(opportunity_id, CrosswalkKind.ORDER_WRITE, owner, "changing the order of"):
            documents = self._find_orders(opportunity_id)
            mine = next((document for document in documents if document.doc_id == known.intacct_id), None)
            open_orders = [document for document in documents if document.is_open]
            target = mine if mine is not None and mine.is_open else (open_orders[0] if open_orders else None)
            if wanted is None:
                if target is None:
                    stage = snapshot.opportunity.get("StageName")
                    return self._changed_after_sync(snapshot, known, mine, [f"stage (now {stage})"])
                return self._retire(snapshot, known, target)
            if target is None and stored.get(order_fingerprint.STATE) not in ("closed", "deleted"):
                account_id = str(snapshot.account["Id"]) if snapshot.account else ""
                return self._changed_after_sync(
                    snapshot, known, mine, fingerprint(wanted, account_id).differences(stored)
                )
            return self._change_order(
                snapshot, known, target=target, wanted=wanted, notes=notes, owner=owner, reason=reason
            )

    def _change_order(
        self,
        snapshot: OpportunitySnapshot,
        known: CrosswalkEntry,
        *,
        target: SalesDocument | None,
        wanted: SalesTransaction,
        notes: list[str],
        owner: str,
        reason: Reason | None,
    ) -> SyncOutcome:
        """Bring the open order `target` to the deal (or, with no open order, make a new one)."""
        opportunity_id = snapshot.opportunity_id
        account = snapshot.account
        assert account is not None
        account_id = str(account["Id"])
        known_customer, merge_notes = self._customer_entry(account)
        plan = plan_customer(account, known_customer, mapping=self.mapping, intacct=self.intacct)
        with self._customer_writer(plan, known_customer, account, owner) as locked_plan:
            customer_id = self._apply_customer_alone(locked_plan)
        order = wanted.model_copy(update={"customer_id": customer_id})
        sent = fingerprint(order, account_id)
        existing_lines = (
            len(self.intacct.get_sales_document_lines(target.doc_id, transaction_type=order.transaction_type))
            if target is not None
            else 0
        )
        self.checkpoint("before_intacct_write", opportunity_id)
        if target is not None and target.customer_id == customer_id and len(order.lines) >= existing_lines:
            with contextlib.suppress(AlreadyApplied):  # this very content was sent before
                self.intacct.update_sotransaction(
                    target.doc_id,
                    order,
                    existing_lines=existing_lines,
                    control_id=f"order-update-{opportunity_id}-{sent.digest[:24]}",
                )
            doc_id, done = target.doc_id, Reason.ORDER_UPDATED
        else:
            doc_id, done = (
                self._replace_order(opportunity_id, order, sent, target, known),
                Reason.ORDER_REPLACED,
            )
        self.checkpoint("after_intacct_write", opportunity_id)
        self.crosswalk.put_mapping(
            opportunity_id,
            CrosswalkKind.ORDER,
            doc_id,
            modified_at(snapshot.opportunity),
            attributes=sent.attributes(customer_id, order.transaction_type),
            replaces=known.intacct_id,
        )
        self.checkpoint("after_crosswalk_write", opportunity_id)
        return self._synced(
            snapshot,
            doc_id,
            customer_id,
            reason or done,
            warnings=[*notes, *plan.warnings],
            customer_warnings=(*plan.warnings, *merge_notes),
        )

    def _replace_order(
        self,
        opportunity_id: str,
        order: SalesTransaction,
        sent: OrderFingerprint,
        target: SalesDocument | None,
        known: CrosswalkEntry,
    ) -> str:
        """Retire the open order (if any) and create the deal's order in its place, in one transaction."""
        replaced = target.doc_id if target is not None else known.intacct_id or ""
        tag = hashlib.sha256(replaced.encode("utf-8")).hexdigest()[:8]
        retired = (
            OrderRetirement(
                target.doc_id, self.lost_deal_order, f"order-retire-{opportunity_id}-{target.record_no}"
            )
            if target is not None
            else None
        )
        try:
            _, doc_id = self.intacct.write_customer_and_order(
                None,
                order,
                customer_control_id="",
                order_control_id=f"order-{opportunity_id}-{sent.digest[:16]}-{tag}",
                retired=retired,
            )
        except Exception as error:
            # It may have committed (an unknown outcome, a repeat): a new open order under the reference
            # is the one sent.
            new = [d for d in self._find_orders(opportunity_id) if d.is_open and d.doc_id != replaced]
            if not new:
                if isinstance(error, AlreadyApplied):
                    raise TransientSyncError(
                        f"Intacct says the new order of {opportunity_id} was sent before, but none is open"
                    ) from error
                raise
            return new[0].doc_id
        return doc_id

    def _retire(
        self, snapshot: OpportunitySnapshot, known: CrosswalkEntry, target: SalesDocument
    ) -> SyncOutcome:
        """The deal left Closed Won: its open order leaves open business (closed, or deleted)."""
        opportunity_id = snapshot.opportunity_id
        retirement = OrderRetirement(
            target.doc_id, self.lost_deal_order, f"order-retire-{opportunity_id}-{target.record_no}"
        )
        self.checkpoint("before_intacct_write", opportunity_id)
        try:
            self.intacct.retire_sotransaction(retirement)
        except AlreadyApplied:
            pass
        except Exception:
            still_open = [
                d for d in self._find_orders(opportunity_id) if d.doc_id == target.doc_id and d.is_open
            ]
            if still_open:
                raise
        self.checkpoint("after_intacct_write", opportunity_id)
        state = "closed" if self.lost_deal_order == "close" else "deleted"
        self.crosswalk.put_mapping(
            opportunity_id,
            CrosswalkKind.ORDER,
            target.doc_id,
            modified_at(snapshot.opportunity),
            attributes={**known.attributes, order_fingerprint.STATE: state},
            replaces=known.intacct_id,
        )
        stage = snapshot.opportunity.get("StageName")
        message = (
            f"The deal left Closed Won (stage {stage}); {self._type_of(known)} {target.doc_id} was {state} "
            "in Intacct. Winning the deal again makes a new order."
        )
        self._write_back(
            opportunity_id,
            [
                write_back.opportunity_order_retired(
                    opportunity_id, target.doc_id if state == "closed" else None, message, self.clock()
                )
            ],
        )
        return self._order_outcome(
            OutcomeStatus.SYNCED,
            Reason.ORDER_RETIRED,
            opportunity_id,
            message,
            account_id=snapshot.account_id,
            order_id=target.doc_id,
        )

    def _changed_after_sync(
        self,
        snapshot: OpportunitySnapshot,
        known: CrosswalkEntry,
        order: SalesDocument | None,
        differences: list[str],
    ) -> SyncOutcome:
        """The order can no longer follow the deal (converted, closed by someone, or gone): say so."""
        opportunity_id = snapshot.opportunity_id
        order_id = known.intacct_id or ""
        where = f"is {order.state_name}" if order is not None else "is no longer"
        message = (
            f"Changed after sync: {', '.join(differences) or 'the deal'} changed, but {order_id} {where} in "
            "Intacct, so it was not changed there. Ask finance to adjust the order in Intacct."
        )
        logger.warning("Opportunity %s: %s", opportunity_id, message)
        self._write_back(
            opportunity_id, [write_back.opportunity_changed_after_sync(opportunity_id, order_id, message)]
        )
        return self._order_outcome(
            OutcomeStatus.CHANGED_AFTER_SYNC,
            Reason.ORDER_NOT_OPEN,
            opportunity_id,
            message,
            account_id=snapshot.account_id,
            order_id=order_id,
        )

    @contextlib.contextmanager
    def _locked(self, sf_id: str, kind: CrosswalkKind, owner: str, what: str) -> Iterator[None]:
        """Hold a crosswalk lock item while writing; kept until its lease ends when the outcome is unknown
        (the write may still commit), released otherwise."""
        try:
            self.crosswalk.claim(sf_id, kind, owner, self.claim_lease_seconds)
        except AlreadyClaimed as error:
            raise TransientSyncError(f"another worker is {what} {sf_id}") from error
        try:
            yield
        except OutcomeUnknown:
            raise  # the write may still commit: nobody else writes this object until the lease ends
        except Exception:
            self.crosswalk.release(sf_id, kind, owner, refused=False)
            raise
        self.crosswalk.release(sf_id, kind, owner, refused=False)

    def _write_back(self, record_id: str, updates: list[RecordUpdate]) -> None:
        self.checkpoint("before_write_back", record_id)
        self.salesforce.write_back(updates)
        self.checkpoint("after_write_back", record_id)

    def _find_orders(self, opportunity_id: str) -> list[SalesDocument]:
        """Every order under the Opportunity's reference: its order, and any it replaced (closed), of each
        transaction type the mapping may make (one query per type)."""
        return [
            document
            for transaction_type in self.mapping.transaction_types(self.transaction_type)
            for document in self.intacct.find_sales_documents(
                reference_no=opportunity_id,
                transaction_type=transaction_type,
                fields=SALES_DOCUMENT_LOOKUP_FIELDS,
            )
        ]

    def _type_of(self, known: CrosswalkEntry) -> str:
        """The transaction type the deal's document was made as (the stack's, for entries older than the
        attribute)."""
        return known.attributes.get(order_fingerprint.TRANSACTION_TYPE) or self.transaction_type

    def _find_order(self, opportunity_id: str) -> SalesDocument | None:
        """The Opportunity's order: the open one under its reference (or, if none is open, the first)."""
        found = self._find_orders(opportunity_id)
        open_orders = [document for document in found if document.is_open]
        if len(open_orders) > 1:
            logger.error(
                "Opportunity %s has %d open orders in Intacct: %s",
                opportunity_id,
                len(open_orders),
                ", ".join(document.doc_id for document in open_orders),
            )
        candidates = open_orders or found
        return candidates[0] if candidates else None

    # ------------------------------------------------------------------ failures and outcomes

    def _failure(self, request: SyncRequest, error: Exception, *, final_attempt: bool) -> SyncOutcome:
        message = describe(error)
        if isinstance(error, ConfigurationFault) and not final_attempt:
            return self._waiting(request, error, message)
        if isinstance(error, PERMANENT_ERRORS) and not isinstance(error, ConfigurationFault):
            status, reason = OutcomeStatus.FAILED, _permanent_reason(error)
        elif final_attempt:
            status, reason = OutcomeStatus.DEAD_LETTERED, Reason.TRANSIENT
            message = (
                f"{message} (last attempt failed; the request is kept in the dead-letter queue for replay)"
            )
        else:
            logger.warning("%s %s will be retried: %s", request.object_type, request.record_id, message)
            return SyncOutcome(
                OutcomeStatus.RETRYING, Reason.TRANSIENT, request.object_type, request.record_id, message
            )
        logger.error("%s %s failed: %s", request.object_type, request.record_id, message)
        self._write_back_failure(request, message)
        return SyncOutcome(status, reason, request.object_type, request.record_id, message)

    def _waiting(self, request: SyncRequest, fault: ConfigurationFault, message: str) -> SyncOutcome:
        """Not the record's fault: it stays on the queue (retried, with a growing delay) and says why."""
        text = (
            f"Waiting: {message} — not this record's fault: {fault.what_to_do}; the sync goes on by itself "
            "once that is done"
        )
        logger.error(
            "%s %s is waiting for the set-up (%s): %s",
            request.object_type,
            request.record_id,
            fault.kind,
            message,
        )
        if not fault.kind.startswith("salesforce_"):  # Salesforce itself is what refuses us now
            try:
                self.salesforce.write_back([write_back.waiting(request.object_type, request.record_id, text)])
            except Exception:
                logger.exception(
                    "could not write the wait back to %s %s", request.object_type, request.record_id
                )
        reason = Reason(fault.kind) if fault.kind in Reason._value2member_map_ else Reason.CONFIGURATION
        return SyncOutcome(OutcomeStatus.WAITING, reason, request.object_type, request.record_id, text)

    def _write_back_failure(self, request: SyncRequest, message: str) -> None:
        """Best effort: the failure is in the sync log and the queue whether or not Salesforce takes it.

        The record's id field is set to its own Intacct id, or cleared: a clone, or a deal whose first
        sync failed, never shows another record's order or customer."""
        kind = CrosswalkKind.CUSTOMER if request.object_type == "Account" else CrosswalkKind.ORDER
        update = write_back.failed(request.object_type, request.record_id, message, None)
        try:
            entry = self.crosswalk.get(request.record_id, kind)
            own = entry.intacct_id if entry is not None and entry.is_complete else None
            if entry is not None and entry.attributes.get(order_fingerprint.STATE) == "deleted":
                own = None
            update = write_back.failed(request.object_type, request.record_id, message, own)
        except Exception:
            # Unknown: leave the id field as it is rather than clear a right one.
            fields = {
                name: value
                for name, value in update.fields.items()
                if name not in write_back.ID_FIELDS.values()
            }
            update = update.model_copy(update={"fields": fields})
        try:
            self.salesforce.write_back([update])
        except Exception:
            logger.exception(
                "could not write the failure back to %s %s", update.object_type, update.record_id
            )

    def _account_outcome(
        self, status: OutcomeStatus, reason: Reason, account_id: str, customer_id: str | None, message: str
    ) -> SyncOutcome:
        return SyncOutcome(
            status,
            reason,
            "Account",
            account_id,
            message,
            intacct_customer_id=customer_id,
            account_id=account_id,
        )

    def _order_outcome(
        self,
        status: OutcomeStatus,
        reason: Reason,
        opportunity_id: str,
        message: str,
        *,
        account_id: str | None = None,
        customer_id: str | None = None,
        order_id: str | None = None,
    ) -> SyncOutcome:
        return SyncOutcome(
            status,
            reason,
            "Opportunity",
            opportunity_id,
            message,
            intacct_customer_id=customer_id,
            intacct_order_id=order_id,
            account_id=account_id,
        )


def shows_synced(
    record: Mapping[str, Any], id_field: str, intacct_id: str, warnings: Sequence[str] = ()
) -> bool:
    """Whether Salesforce already shows the record as synced to this Intacct id, with these warnings
    (nothing to write back)."""
    if record.get(id_field) != intacct_id:
        return False
    if warnings:
        return record.get("Intacct_Sync_Status__c") == write_back.SYNCED_WITH_WARNINGS and record.get(
            "Intacct_Sync_Error__c"
        ) == "\n".join(warnings)
    return record.get("Intacct_Sync_Status__c") == write_back.SYNCED


def _permanent_reason(error: Exception) -> Reason:
    if isinstance(error, PermanentIntacctError):
        return Reason.INTACCT_REJECTED
    if isinstance(error, PermanentSalesforceError):
        return Reason.SALESFORCE_REJECTED
    return Reason.BAD_RECORD
