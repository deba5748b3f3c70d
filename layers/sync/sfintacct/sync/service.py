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
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from sfintacct.crosswalk import AlreadyClaimed, CrosswalkEntry, CrosswalkKind, CrosswalkPermanentError
from sfintacct.intacct.client import SALES_DOCUMENT_LOOKUP_FIELDS
from sfintacct.intacct.errors import AlreadyApplied, DuplicateRecord, OutcomeUnknown, PermanentIntacctError
from sfintacct.intacct.models import CustomerUpdate, NewCustomer, SalesDocument
from sfintacct.mapping import MappingError, RecordDataError, SyncMapping
from sfintacct.salesforce.errors import PermanentSalesforceError
from sfintacct.salesforce.errors import RecordNotFound as SalesforceRecordNotFound
from sfintacct.salesforce.models import OpportunitySnapshot, RecordUpdate
from sfintacct.sync import write_back
from sfintacct.sync.customers import (
    CustomerAction,
    CustomerPlan,
    find_customer_id,
    plan_customer,
    record_customer,
)
from sfintacct.sync.errors import PermanentSyncError, TransientSyncError, describe
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
    MappingError,
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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.intacct = intacct
        self.salesforce = salesforce
        self.crosswalk = crosswalk
        self.sync_log = sync_log
        self.mapping = mapping
        self.transaction_type = transaction_type
        self.claim_lease_seconds = claim_lease_seconds
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
            return self._account_outcome(
                OutcomeStatus.SKIPPED, Reason.NOT_FOUND, account_id, None, str(error)
            )
        plan = plan_customer(account, known, mapping=self.mapping, intacct=self.intacct)
        with self._customer_writer(plan, known, account, request.producer_id) as plan:
            customer_id = self._apply_customer_alone(plan)
        if plan.write is not None or not shows_synced(account, "Intacct_Customer_Id__c", customer_id):
            self._write_back(account_id, [write_back.account_synced(account_id, customer_id, self.clock())])
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
        try:
            self.crosswalk.claim(account_id, CrosswalkKind.CUSTOMER_WRITE, owner, self.claim_lease_seconds)
        except AlreadyClaimed as error:
            raise TransientSyncError(
                f"another worker is writing the customer of Account {account_id}"
            ) from error
        current = self.crosswalk.get(account_id, CrosswalkKind.CUSTOMER)
        if current != known:
            plan = plan_customer(account, current, mapping=self.mapping, intacct=self.intacct)
        try:
            yield plan
        except OutcomeUnknown:
            raise  # the write may still commit: nobody else writes this customer until the lease ends
        except Exception:
            self.crosswalk.release(account_id, CrosswalkKind.CUSTOMER_WRITE, owner, refused=False)
            raise
        self.crosswalk.release(account_id, CrosswalkKind.CUSTOMER_WRITE, owner, refused=False)

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
            return self._already_synced(snapshot, known)
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
            return self._already_synced(snapshot, claim)
        try:
            return self._create_order(snapshot, snapshot.account, claim, recovering=known is not None)
        except PERMANENT_ERRORS:
            # Intacct refused (nothing was written): free the Opportunity so a corrected one syncs at once,
            # with a new control id.
            self.crosswalk.release(
                opportunity_id,
                CrosswalkKind.ORDER,
                owner,
                refused=True,
                refused_source_modified_at=modified_at(opportunity),
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
                # The customer's crosswalk entry may be missing too: the next Account sync adopts it.
                return self._finish_order(
                    snapshot,
                    account,
                    doc_id=existing.doc_id,
                    customer_id=existing.customer_id,
                    owner=owner,
                    reason=Reason.RECOVERED,
                )
        known_customer = self.crosswalk.get(account_id, CrosswalkKind.CUSTOMER)
        plan = plan_customer(account, known_customer, mapping=self.mapping, intacct=self.intacct)
        with self._customer_writer(plan, known_customer, account, owner) as locked_plan:
            order_plan = locked_plan
            if locked_plan.customer_id is None:
                # Intacct numbers new customers here: create it first, then the order can name it.
                new_id = self._apply_customer_alone(locked_plan)
                order_plan = replace(locked_plan, customer_id=new_id, write=None)
            customer_id = order_plan.customer_id
            assert customer_id is not None
            doc_id = self._write_order(snapshot, order_plan, customer_id, claim)
        return self._finish_order(
            snapshot, account, doc_id=doc_id, customer_id=customer_id, owner=owner, reason=Reason.CREATED
        )

    def _write_order(
        self, snapshot: OpportunitySnapshot, plan: CustomerPlan, customer_id: str, claim: CrosswalkEntry
    ) -> str:
        """Send the order (with the plan's customer write, in one transaction) and record the customer."""
        opportunity_id = snapshot.opportunity_id
        order = self.mapping.sales_transaction(
            snapshot, customer_id=customer_id, transaction_type=self.transaction_type
        )
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

    def _finish_order(
        self,
        snapshot: OpportunitySnapshot,
        account: dict[str, Any],
        *,
        doc_id: str,
        customer_id: str,
        owner: str,
        reason: Reason,
    ) -> SyncOutcome:
        opportunity_id = snapshot.opportunity_id
        self.crosswalk.complete(
            opportunity_id,
            CrosswalkKind.ORDER,
            doc_id,
            owner,
            modified_at(snapshot.opportunity),
            attributes={"customer_id": customer_id},
        )
        self.checkpoint("after_crosswalk_write", opportunity_id)
        now = self.clock()
        updates = [write_back.opportunity_synced(opportunity_id, doc_id, now)]
        if not shows_synced(account, "Intacct_Customer_Id__c", customer_id):
            updates.append(write_back.account_synced(str(account["Id"]), customer_id, now))
        self._write_back(opportunity_id, updates)
        return self._order_outcome(
            OutcomeStatus.SYNCED,
            reason,
            opportunity_id,
            f"{self.transaction_type} {doc_id} for customer {customer_id}",
            account_id=str(account["Id"]),
            customer_id=customer_id,
            order_id=doc_id,
        )

    def _already_synced(self, snapshot: OpportunitySnapshot, known: CrosswalkEntry) -> SyncOutcome:
        """The order exists: never a second one. Repair the write-backs if an earlier one did not land."""
        opportunity_id = snapshot.opportunity_id
        order_id = known.intacct_id or ""
        customer_id = known.attributes.get("customer_id")
        now = self.clock()
        updates = []
        if not shows_synced(snapshot.opportunity, "Intacct_Order_Id__c", order_id):
            updates.append(write_back.opportunity_synced(opportunity_id, order_id, now))
        account = snapshot.account
        if (
            account is not None
            and customer_id
            and not shows_synced(account, "Intacct_Customer_Id__c", customer_id)
        ):
            updates.append(write_back.account_synced(str(account["Id"]), customer_id, now))
        if updates:
            self._write_back(opportunity_id, updates)
        logger.info("Opportunity %s already synced as %s", opportunity_id, order_id)
        return self._order_outcome(
            OutcomeStatus.ALREADY_SYNCED,
            Reason.ORDER_EXISTS,
            opportunity_id,
            f"already synced as {order_id}; no second order is created",
            account_id=snapshot.account_id,
            customer_id=customer_id,
            order_id=order_id,
        )

    def _write_back(self, record_id: str, updates: list[RecordUpdate]) -> None:
        self.checkpoint("before_write_back", record_id)
        self.salesforce.write_back(updates)
        self.checkpoint("after_write_back", record_id)

    def _find_order(self, opportunity_id: str) -> SalesDocument | None:
        found = self.intacct.find_sales_documents(
            reference_no=opportunity_id,
            transaction_type=self.transaction_type,
            fields=SALES_DOCUMENT_LOOKUP_FIELDS,
        )
        if len(found) > 1:
            logger.error(
                "Opportunity %s has %d orders in Intacct: %s",
                opportunity_id,
                len(found),
                ", ".join(document.doc_id for document in found),
            )
        return found[0] if found else None

    # ------------------------------------------------------------------ failures and outcomes

    def _failure(self, request: SyncRequest, error: Exception, *, final_attempt: bool) -> SyncOutcome:
        message = describe(error)
        if isinstance(error, PERMANENT_ERRORS):
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
        self._write_back_failure(write_back.failed(request.object_type, request.record_id, message))
        return SyncOutcome(status, reason, request.object_type, request.record_id, message)

    def _write_back_failure(self, update: RecordUpdate) -> None:
        """Best effort: the failure is in the sync log and the queue whether or not Salesforce takes it."""
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


def shows_synced(record: Mapping[str, Any], id_field: str, intacct_id: str) -> bool:
    """Whether Salesforce already shows the record as Synced to this Intacct id (nothing to write back)."""
    return record.get(id_field) == intacct_id and record.get("Intacct_Sync_Status__c") == "Synced"


def _permanent_reason(error: Exception) -> Reason:
    if isinstance(error, PermanentIntacctError):
        return Reason.INTACCT_REJECTED
    if isinstance(error, PermanentSalesforceError):
        return Reason.SALESFORCE_REJECTED
    if isinstance(error, MappingError):
        return Reason.BAD_MAPPING
    return Reason.BAD_RECORD
