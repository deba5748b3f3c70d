"""The `sfintacct` command: argument parsing, output (human or --json) and exit codes.

    sfintacct --local status 006...            the local stack of `make stack`
    sfintacct --stack sfintacct-prod retry 006...

Exit codes: 0 done, 1 something failed (the output says what), 2 bad usage.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from sfintacct.salesforce_ids import ORGANIZATION_KEY_PREFIX, InvalidSalesforceId, to_case_safe_id_with_prefix
from sfintacct_ops.backfill import DEFAULT_RATE, BackfillError, BackfillResult, backfill, default_checkpoint
from sfintacct_ops.deployment import (
    Deployment,
    DeploymentError,
    default_stack_file,
    from_cloudformation,
    from_local,
)
from sfintacct_ops.preflight import CheckResult, preflight
from sfintacct_ops.queues import DeadLetter, redrive, retry
from sfintacct_ops.reconcile import Finding, ReconcileError, Reconciliation, parse_since, reconcile
from sfintacct_ops.records import case_safe_id
from sfintacct_ops.status import plain, record_status, render

PROGRAM = "sfintacct"
COMMANDS = ("status", "retry", "redrive", "backfill", "reconcile", "preflight")
DESCRIPTION = """\
Operate an sfintacct deployment: a record's whole story, retries, dead-letter redrives, backfills.

Where the deployment is: --stack NAME (a CloudFormation stack: its Outputs and Parameters; AWS
credentials and region as for the AWS CLI, or --region/--profile), or --local [PATH] (the local stack
of `make stack`: its stack.json, default $SFINTACCT_STATE_DIR/stack.json or .local/stack.json).
Every command takes --json for scripts. Exit status: 0 done, 1 something failed, 2 bad usage."""
RECONCILE_DESCRIPTION = """\
Compare the won Opportunities (--since: CloseDate on or after) with the Intacct orders whose reference
(PONUMBER) is the deal, and their Accounts with their customers. Findings: missing_order, duplicate_orders,
amount_differs, customer_behind (the Account changed since its data was sent, or the customer is gone),
customer_edited (the customer's name was changed in Intacct). --fix sends a retry for the missing orders,
differing amounts and customers behind; duplicates and edits made in Intacct are finance's call and are
only reported. Exit status 1 while a finding is left as it is."""
PREFLIGHT_DESCRIPTION = """\
Before go-live, check the set-up against the real Intacct company and Salesforce org (reads only): the
mapping file loads; the Intacct sender (control) and user (login) sign in; the Salesforce integration user
signs in; CUSTOMER has the mapping's SALESFORCE_ID custom field (and its other custom fields); every active
Product2's code is an active Intacct item; the mapping's payment terms and the transaction definition
exist; the integration user can query the objects the workers read and update the Intacct_* fields. Each
check prints PASS or FAIL, and with FAIL what to do. Exit status 1 if any check fails."""
BACKFILL_DESCRIPTION = """\
Find records in Salesforce and put one SyncRequest each on the work queue.

opportunities: the won ones (IsWon = true); accounts: all. --since and --where narrow the query; it is
read page by page (the client follows nextRecordsUrl). Requests go out with SendMessageBatch (10 per
call) at most --rate a second. The ids sent are kept in a checkpoint file, so after an interruption the
same command sends only the rest (--fresh starts over). Records already synced are answered
already_synced by the workers. Very large sets (millions of records) would be read with Bulk API 2.0,
which this command does not implement yet: the REST query keeps every id in memory."""


def _common_options(*, suppress: bool) -> argparse.ArgumentParser:
    """Options accepted before or after the command (`sfintacct --local status ID --json`)."""
    default: Any = argparse.SUPPRESS if suppress else None
    parser = argparse.ArgumentParser(add_help=False)
    where = parser.add_argument_group("deployment")
    where.add_argument("--stack", metavar="NAME", default=default, help="a deployed CloudFormation stack")
    where.add_argument(
        "--local",
        metavar="PATH",
        default=default,
        help="the local stack; written --local [PATH]: its stack.json or state dir "
        f"(default {_shown(default_stack_file())})",
    )
    where.add_argument("--region", default=default, help="AWS region of --stack (default: the AWS config)")
    where.add_argument("--profile", default=default, help="AWS profile for --stack")
    where.add_argument(
        "--org-id", default=default, help="the Salesforce org id of requests, when the stack names several"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="print JSON for scripts",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[_common_options(suppress=False)],
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = [_common_options(suppress=True)]

    status = commands.add_parser(
        "status",
        parents=common,
        help="a record's story: sync log, crosswalk, Intacct, Salesforce",
        description="Show what the sync log, the crosswalk, Intacct and Salesforce hold for each record.",
    )
    status.add_argument(
        "ids", nargs="+", metavar="ID", help="Account (001) or Opportunity (006) id, 15 or 18"
    )

    retry_parser = commands.add_parser(
        "retry",
        parents=common,
        help="enqueue a new sync request for records",
        description="Put one new SyncRequest per record on its work queue (producer id retry-<uuid>, no "
        "LastModifiedDate: a retry asked for). A record already synced is answered already_synced.",
    )
    retry_parser.add_argument("ids", nargs="+", metavar="ID", help="Account (001) or Opportunity (006) id")

    redrive_parser = commands.add_parser(
        "redrive",
        parents=common,
        help="move dead-letter messages back to their work queue",
        description="List the dead-letter queue's messages, then move each SyncRequest back to its work "
        "queue (sent first, deleted from the dead-letter queue only after). Other messages are reported "
        "and left in place.",
    )
    redrive_parser.add_argument("--queue", choices=("customer", "order", "both"), default="both")
    redrive_parser.add_argument("--dry-run", action="store_true", help="list only, move nothing")

    backfill_parser = commands.add_parser(
        "backfill",
        parents=common,
        help="enqueue sync requests for records found in Salesforce",
        description=BACKFILL_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    backfill_parser.add_argument("kind", choices=("accounts", "opportunities"))
    backfill_parser.add_argument(
        "--since", metavar="DATE", help="LastModifiedDate on or after (YYYY-MM-DD or ISO)"
    )
    backfill_parser.add_argument(
        "--where", metavar="SOQL", help="another SOQL condition, e.g. \"Type = 'Customer'\""
    )
    backfill_parser.add_argument("--dry-run", action="store_true", help="count and list, send nothing")
    backfill_parser.add_argument(
        "--rate",
        type=float,
        default=DEFAULT_RATE,
        metavar="N",
        help=f"messages a second (default {DEFAULT_RATE:g})",
    )
    backfill_parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PATH",
        help=f"ids already sent (default {_shown(default_checkpoint('opportunities'))} or -accounts)",
    )
    backfill_parser.add_argument("--fresh", action="store_true", help="ignore and restart the checkpoint")
    backfill_parser.add_argument("--limit", type=int, metavar="N", help="send at most N records in this run")

    reconcile_parser = commands.add_parser(
        "reconcile",
        parents=common,
        help="compare won deals with Intacct orders and customers",
        description=RECONCILE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    reconcile_parser.add_argument(
        "--since", metavar="DATE", help="deals with CloseDate on or after (YYYY-MM-DD)"
    )
    reconcile_parser.add_argument(
        "--where", metavar="SOQL", help="another condition on the Opportunity, e.g. \"Type = 'Renewal'\""
    )
    reconcile_parser.add_argument(
        "--fix", action="store_true", help="send a retry for each finding a retry repairs"
    )
    reconcile_parser.add_argument("--csv", action="store_true", help="print the findings as CSV")

    commands.add_parser(
        "preflight",
        parents=common,
        help="check the set-up against Intacct and Salesforce before go-live",
        description=PREFLIGHT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def main(
    argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    arguments = parser.parse_args(_local_path_argument(list(sys.argv[1:] if argv is None else argv)))
    as_json = bool(getattr(arguments, "json", False))
    deployment: Deployment | None = None
    try:
        deployment = _deployment(arguments, parser)
        return _run(deployment, arguments, as_json, out, err)
    except (DeploymentError, BackfillError, ReconcileError, InvalidSalesforceId) as error:
        print(f"{PROGRAM}: {error}", file=err)
        return 1
    except Exception as error:
        print(f"{PROGRAM}: {type(error).__name__}: {error}", file=err)
        return 1
    finally:
        if deployment is not None:
            deployment.close()


def _run(
    deployment: Deployment, arguments: argparse.Namespace, as_json: bool, out: TextIO, err: TextIO
) -> int:
    command = arguments.command
    if command == "status":
        return _status(deployment, arguments.ids, as_json, out)
    if command == "retry":
        return _retry(deployment, arguments.ids, as_json, out)
    if command == "redrive":
        return _redrive(deployment, arguments, as_json, out)
    if command == "reconcile":
        return _reconcile(deployment, arguments, as_json, out)
    if command == "preflight":
        return _preflight(deployment, as_json, out)
    return _backfill(deployment, arguments, as_json, out, err)


def _local_path_argument(argv: list[str]) -> list[str]:
    """`--local` takes an optional PATH: `--local` alone (before a command or an id) means the default."""
    result: list[str] = []
    for index, argument in enumerate(argv):
        if argument != "--local":
            result.append(argument)
            continue
        following = argv[index + 1] if index + 1 < len(argv) else None
        if following is not None and _looks_like_path(following):
            result.append("--local")  # the path follows as its value
        else:
            result.append(f"--local={default_stack_file()}")
    return result


def _looks_like_path(token: str) -> bool:
    if token.startswith("-") or token in COMMANDS:
        return False
    return os.sep in token or token.endswith(".json") or Path(token).exists()


def _deployment(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> Deployment:
    stack, local = getattr(arguments, "stack", None), getattr(arguments, "local", None)
    if bool(stack) == bool(local):
        parser.error("say where the deployment is: --stack NAME or --local [PATH] (one of them)")
    if stack:
        deployment = from_cloudformation(
            stack, region=getattr(arguments, "region", None), profile=getattr(arguments, "profile", None)
        )
    else:
        deployment = from_local(Path(str(local)))
    org_id = getattr(arguments, "org_id", None)
    if org_id:
        org_id = to_case_safe_id_with_prefix(org_id, ORGANIZATION_KEY_PREFIX, "an organization")
        deployment = dataclasses.replace(deployment, org_ids=(org_id,))
    return deployment


def _ids(values: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(case_safe_id(value) for value in values))


def _print_json(value: Any, out: TextIO) -> None:
    json.dump(plain(value), out, indent=2, sort_keys=False)
    out.write("\n")


# ---------------------------------------------------------------------------- commands


def _status(deployment: Deployment, values: Sequence[str], as_json: bool, out: TextIO) -> int:
    statuses = [record_status(deployment, record_id) for record_id in _ids(values)]
    if as_json:
        _print_json({"records": [status.as_dict() for status in statuses]}, out)
    else:
        out.write("\n\n".join(render(status) for status in statuses) + "\n")
    return 1 if any(status.errors for status in statuses) else 0


def _retry(deployment: Deployment, values: Sequence[str], as_json: bool, out: TextIO) -> int:
    requests = retry(deployment, _ids(values))
    if as_json:
        _print_json(
            {
                "sent": [
                    {**request.model_dump(mode="json"), "queue": deployment.work_queue(request.object_type)}
                    for request in requests
                ]
            },
            out,
        )
    else:
        for request in requests:
            queue = deployment.work_queue(request.object_type)
            out.write(
                f"sent {request.object_type} {request.record_id} to {queue}"
                f"  producer_id={request.producer_id} source={request.source}\n"
            )
    return 0


def _redrive(deployment: Deployment, arguments: argparse.Namespace, as_json: bool, out: TextIO) -> int:
    letters = redrive(deployment, arguments.queue, dry_run=arguments.dry_run)
    if as_json:
        _print_json(
            {
                "dry_run": arguments.dry_run,
                "messages": [letter.as_dict() for letter in letters],
                "moved": sum(letter.moved for letter in letters),
                "left": sum(letter.left_behind for letter in letters),
            },
            out,
        )
    else:
        _render_dead_letters(letters, arguments.dry_run, out)
    # Something left in a dead-letter queue is a failure of the move, not of a dry run's look.
    return 1 if not arguments.dry_run and any(letter.left_behind for letter in letters) else 0


def _render_dead_letters(letters: Sequence[DeadLetter], dry_run: bool, out: TextIO) -> None:
    if not letters:
        out.write("the dead-letter queues are empty\n")
        return
    for letter in letters:
        record = f"{letter.object_type} {letter.record_id}" if letter.record_id else "(not a SyncRequest)"
        out.write(
            f"{letter.queue} DLQ  {letter.message_id}  {record}  producer_id={letter.producer_id or '-'}  "
            f"receives={letter.receive_count}  age={_age(letter.age_seconds)}  -> {letter.action}\n"
        )
    moved = sum(letter.moved for letter in letters)
    left = sum(letter.left_behind for letter in letters)
    if dry_run:
        out.write(f"{len(letters)} message(s) listed; nothing moved (dry run)\n")
    else:
        out.write(f"{moved} moved back to their work queue, {left} left in the dead-letter queue\n")


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    if seconds < 172800:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def _backfill(
    deployment: Deployment, arguments: argparse.Namespace, as_json: bool, out: TextIO, err: TextIO
) -> int:
    result = backfill(
        deployment,
        arguments.kind,
        since=arguments.since,
        where=arguments.where,
        dry_run=arguments.dry_run,
        rate=arguments.rate,
        checkpoint_path=arguments.checkpoint,
        fresh=arguments.fresh,
        limit=arguments.limit,
        progress=err,
    )
    if as_json:
        _print_json(result.as_dict(), out)
    else:
        _render_backfill(result, out)
    return 1 if result.error or result.interrupted else 0


def _render_backfill(result: BackfillResult, out: TextIO) -> None:
    out.write(f"query: {result.query}\n")
    out.write(
        f"found {result.found} {result.object_type} record(s); {result.already_sent} sent by an earlier run "
        f"(checkpoint); {result.to_send} to send\n"
    )
    if result.dry_run:
        out.writelines(f"  {record_id}\n" for record_id in result.records)
        out.write("dry run: nothing sent\n")
        return
    out.write(f"sent {result.sent} in {result.elapsed_seconds} s; checkpoint {result.checkpoint}\n")
    if result.interrupted:
        out.write("interrupted: run the same command again to send the rest\n")
    if result.error:
        out.write(f"stopped: {result.error}; run the same command again to send the rest\n")


def _reconcile(deployment: Deployment, arguments: argparse.Namespace, as_json: bool, out: TextIO) -> int:
    result = reconcile(
        deployment, since=parse_since(arguments.since), where=arguments.where, fix=arguments.fix
    )
    if as_json:
        _print_json(result.as_dict(), out)
    elif arguments.csv:
        writer = csv.DictWriter(out, fieldnames=[item.name for item in dataclasses.fields(Finding)])
        writer.writeheader()
        writer.writerows(finding.as_dict() for finding in result.findings)
    else:
        _render_reconciliation(result, out)
    # Findings left as they are (not fixed, or not fixable by a retry) fail the run, for scripts.
    return 1 if any(not finding.fixed for finding in result.findings) else 0


def _render_reconciliation(result: Reconciliation, out: TextIO) -> None:
    since = f" closed on or after {result.since}" if result.since else ""
    out.write(
        f"{result.deals} won deal(s){since}, {result.orders} order(s) in Intacct, "
        f"{result.accounts} Account(s)\n"
    )
    if not result.findings:
        out.write("every won deal has exactly one order at its amount; every customer is up to date\n")
        return
    for finding in result.findings:
        out.write(f"{finding.kind:<17} {finding.record_id}  {finding.name}\n")
        out.write(f"    {finding.detail}\n")
        for label, value in (
            ("Salesforce", finding.salesforce),
            ("Intacct", finding.intacct),
            ("last sync", finding.last_sync),
            ("fix", finding.fixed),
        ):
            if value:
                out.write(f"    {label + ':':<11} {value}\n")
    out.write(f"{len(result.findings)} finding(s), {result.fixed} retried\n")


def _preflight(deployment: Deployment, as_json: bool, out: TextIO) -> int:
    checks = preflight(deployment)
    passed = all(check.passed for check in checks)
    if as_json:
        checked = [check.as_dict() for check in checks]
        _print_json({"deployment": deployment.description, "passed": passed, "checks": checked}, out)
    else:
        out.write(f"preflight of {deployment.description}\n")
        render_preflight(checks, out)
    return 0 if passed else 1


def render_preflight(checks: Sequence[CheckResult], out: TextIO) -> None:
    """One line per check (PASS or FAIL, its name, what was found), a `fix:` line under each failure."""
    width = max((len(check.name) for check in checks), default=0)
    for check in checks:
        out.write(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<{width}}  {check.detail}\n")
        if not check.passed and check.fix:
            out.write(f"      {'':<{width}}  fix: {check.fix}\n")
    failed = [check.name for check in checks if not check.passed]
    summary = f"{len(checks) - len(failed)} of {len(checks)} checks passed"
    out.write(f"{summary}; failed: {', '.join(failed)}\n" if failed else f"{summary}\n")


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)
