"""Faults under load: each scenario breaks one part of the running lab while Locust offers
checkouts, heals it, and judges what the tills saw and what the platform kept.

    ./lab chaos [--scenario NAME ...] [--rate 50] [--before-s 45] [--after-s 60]
    ./lab chaos --list
    ./lab chaos --scenario cassandra-kill --write-level ALL   (the services at ALL, no fallback)

For each scenario (loadtest.chaos_scenarios), Locust runs the steady shape and logs every
operation as it ends (--ops-log). After `before` seconds the scenario's playbook under
playbooks/chaos/ injects the fault; when the fault's time is up (or its playbook is done),
playbooks/chaos/heal.yml starts whatever is stopped and waits until it serves; the load
goes on for `after` seconds more. heal.yml also runs before the first scenario, and
whenever a scenario fails, so the lab is never left broken. Then the run is judged:

- availability during the fault: the share of operations started between the injection
  and the fault's end that completed (sold or declined);
- checkout p99 during the fault: the checkout as the till saw it, retries included;
- time to recover: from the fault's end to the first 10 s with no failed operation and
  the rate back to 90 % of the rate before the fault (0: it never dropped, or recovered
  by itself before the fault's time was up);
- the audit, once the writer has caught up: every acknowledged sale stored exactly once
  in every DC; each sale's stock movements applied once (one row per product, the sold
  quantity); every approved charge of the run's Idempotency-Keys has its stored sale,
  once the charges a till gave up on are settled: checkout-reconcile voids them
  (playbooks/checkout_reconcile.yml, at age 0, since the load is over), as it would in
  production after its age. The verdict also needs the platform to have recovered.

With --write-level LEVEL, playbooks/app.yml first redeploys the API and the consumer at
that Cassandra consistency level with the fallback off, so the level is what every
statement really gets; the scenario rows are named scenario@LEVEL; and app.yml runs again
at the end, with the inventory's own levels, whatever happened.
Prints a table, writes it with every figure to <results>/<date>-chaos.md and .json, and
exits 1 when a verdict fails (2 when a run could not be made).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from checkout.domain import region_keyspace
from checkout.errors import DependencyUnavailable
from checkout.events import stored_lines
from checkout.idempotency import invoice_id_for
from checkout.inventory import sold_quantities

from loadtest.chaos_scenarios import Op, Scenario, parse_ops, recovery_s, scenarios, window
from loadtest.pacing import RAMP_S
from loadtest.probe import apis_not_selling
from loadtest.quorum import WRITE_LEVELS
from loadtest.raw_cassandra import connect
from loadtest.remote import PlaybookError, play
from loadtest.run import RESULTS, STOP_TIMEOUT_S, Load, headless_command, locust_environment
from loadtest.targets import LAB_INVENTORY, REPO, InventoryError, Targets, from_inventory
from loadtest.verify import KEYSPACE, audit, rows_by_dc, seconds_to_zero_lag

PLAYBOOKS = REPO / "playbooks" / "chaos"
HEAL = PLAYBOOKS / "heal.yml"
APP = REPO / "playbooks" / "app.yml"
RECONCILE = REPO / "playbooks" / "checkout_reconcile.yml"
COMMITTED_RESULTS = REPO / "loadtest" / "results"
# heal.yml takes about 30 s on a quiet lab and 2 minutes under load while nodes start; the
# load runs until `after` seconds past it, and never longer than this past the fault.
HEAL_BOUND_S = 900.0


class ChaosError(RuntimeError):
    pass


@contextmanager
def healed(inventory: Path, log: Path) -> Iterator[None]:
    """Whatever happens inside, every service is started again and waited for after it."""
    try:
        yield
    finally:
        play(inventory, HEAL, {}, log)


@contextmanager
def service_level(inventory: Path, level: str | None, log: Path) -> Iterator[None]:
    """The API and consumer at Cassandra level `level`, no fallback, inside; the
    inventory's levels again after, whatever happened (no-op for None)."""
    if level is None:
        yield
        return
    try:
        extra = {"checkout_app_cassandra_consistency": level, "checkout_app_cassandra_fallback_consistency": ""}
        play(inventory, APP, extra, log)
        yield
    finally:
        play(inventory, APP, {}, log)


def start_locust(
    targets: Targets, directory: Path, rate: float, hold_s: float, stop: Path, prefix: str
) -> subprocess.Popen[bytes]:
    command = headless_command(
        targets, directory, Load(rate, hold_s), prefix=prefix, ops_log=directory / "ops", stop_file=stop
    )
    log = (directory / f"{prefix}.log").open("w")
    return subprocess.Popen(command, cwd=REPO, env=locust_environment(), stdout=log, stderr=subprocess.STDOUT)


@dataclass(frozen=True)
class Timeline:
    load_start: float  # the ramp's end (Unix seconds)
    fault_start: float
    fault_end: float  # the fault's time is up (or its playbook done): heal.yml begins
    healed: float  # heal.yml done: everything serves again
    load_end: float


def run_faults(
    scenario: Scenario, targets: Targets, inventory: Path, directory: Path, rate: float, before_s: float, after_s: float
) -> Timeline:
    log, stop = directory / "ansible.log", directory / "stop"
    # The load ends `after_s` after the heal (the stop file); this only bounds it.
    bound_s = before_s + scenario.fault_s + scenario.playbook_s + HEAL_BOUND_S + after_s
    locust = start_locust(targets, directory, rate, bound_s, stop, "locust")
    begun = time.time()
    try:
        time.sleep(RAMP_S + before_s)
        fault_start = time.time()
        with healed(inventory, log):
            if scenario.kill_load:
                locust.kill()
                locust.wait()
                time.sleep(scenario.fault_s)
                locust = start_locust(targets, directory, rate, bound_s, stop, "locust-again")
            for fault in scenario.faults:
                play(inventory, PLAYBOOKS / fault.playbook, fault.extra_vars, log)
            time.sleep(max(0.0, fault_start + scenario.fault_s - time.time()))
            fault_end = time.time()
        healed_at = time.time()
        time.sleep(after_s)
        stop.touch()
        locust.wait(timeout=2 * STOP_TIMEOUT_S)  # the tills finish their operation
    finally:
        stop.touch()
        if locust.poll() is None:
            locust.kill()
    return Timeline(begun + RAMP_S, fault_start, fault_end, healed_at, time.time())


def read_ops(directory: Path) -> tuple[list[Op], set[str]]:
    lines: list[str] = []
    for path in sorted((directory / "ops").glob("ops-*.jsonl")):
        lines += path.read_text().splitlines()
    return parse_ops(lines)


@dataclass(frozen=True)
class Audit:
    acked: int
    stored_once: int  # acknowledged sales with exactly one row in every DC
    missing: int
    duplicated: int
    stored_unanswered: int  # stored sales of the run's keys whose answer the till never got
    unexplained: int  # stored in the window, not the run's
    stock_ok: int  # sales whose movements are there once, with the sold quantities
    stock_wrong: int
    charges_approved: int
    charges_without_sale: int  # still standing after the settlement
    charges_voided: int = 0  # without a sale once the load ended: checkout-reconcile voided them

    @property
    def passed(self) -> bool:
        return (
            self.stored_once == self.acked
            and self.missing == self.duplicated == self.unexplained == 0
            and self.stock_wrong == 0
            and self.charges_without_sale == 0
        )


def _charge(gateway: str, key: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"{gateway}/v1/charges/{quote(key, safe='')}", timeout=10) as answer:
            return dict(json.load(answer))
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def approved_keys(gateway: str | None, keys: Iterable[str]) -> set[str]:
    """The keys the sandbox gateway holds an approved charge for."""
    if gateway is None:
        raise ChaosError("the inventory has no host in group payment_gateway: the charge audit needs it")
    keys = sorted(keys)
    with ThreadPoolExecutor(max_workers=8) as pool:
        charges = list(pool.map(lambda key: _charge(gateway, key), keys))
    return {key for key, charge in zip(keys, charges, strict=True) if charge and charge.get("outcome") == "approved"}


def _expected_moves(row: Mapping[str, Any]) -> dict[str, int]:
    return {product: -quantity for product, quantity in sold_quantities(stored_lines(row)).items()}


def stock_check(targets: Targets, sales: list[dict[str, Any]]) -> tuple[int, int]:
    """(sales whose movements are right, sales whose are not), read in each branch's region."""
    partitions: dict[tuple[str, date], list[dict[str, Any]]] = {}
    for row in sales:
        partitions.setdefault((row["branch"], row["day"]), []).append(row)
    ok = wrong = 0
    for (branch, day), rows in partitions.items():
        dc = targets.dc_by_branch[branch]
        cluster = connect(dc, targets.cassandra_by_dc[dc], "LOCAL_QUORUM")
        try:
            session = cluster.connect()
            moved: dict[str, dict[str, int]] = {}
            for move in session.execute(
                f"SELECT product_id, movement_id, delta FROM {region_keyspace(KEYSPACE, dc)}.stock_moves"
                " WHERE branch = %s AND day = %s",
                (branch, day),
            ):
                moved.setdefault(move.movement_id, {})[move.product_id] = move.delta
        finally:
            cluster.shutdown()
        for row in rows:
            if moved.get(row["invoice_id"]) == _expected_moves(row):
                ok += 1
            else:
                wrong += 1
    return ok, wrong


def settle(
    targets: Targets, keys: set[str], stored_invoices: set[str], inventory: Path, log: Path
) -> tuple[set[str], set[str]]:
    """(the run's approved charges, those still standing after the settlement). A charge without a sale once the
    tills stopped retrying is what checkout-reconcile settles in production; here it runs
    at once (age 0: the load is over), and only when there is something to settle."""
    approved = approved_keys(targets.gateway, keys)
    if all(invoice_id_for(key) in stored_invoices for key in approved):
        return approved, approved
    play(inventory, RECONCILE, {"checkout_reconcile_older_than_min": "0", "checkout_reconcile_since_h": "2"}, log)
    return approved, approved_keys(targets.gateway, keys)


def audit_run(targets: Targets, ops: list[Op], keys: set[str], timeline: Timeline, inventory: Path, log: Path) -> Audit:
    if seconds_to_zero_lag(targets.kafka_bootstrap) is None:
        raise ChaosError("the consumer did not catch up within 120 s of the run's end")
    start = datetime.fromtimestamp(timeline.load_start - RAMP_S, UTC)
    end = datetime.fromtimestamp(timeline.load_end, UTC)
    acked = [op.invoice for op in ops if op.result == "sold"]
    by_dc = rows_by_dc(targets, start, end)
    stored = audit(acked, by_dc, start, end)
    # A sale stored for one of the run's keys whose answer never reached the till (the till
    # was killed, or gave up): the platform kept it; the till would retry with its key.
    by_invoice = {invoice_id_for(key): key for key in keys}
    unanswered = [invoice for invoice in stored.unexpected if invoice in by_invoice]
    run_invoices = set(acked) | set(unanswered)
    run_sales = [row for row in next(iter(by_dc.values()), []) if row["invoice_id"] in run_invoices]
    stock_ok, stock_wrong = stock_check(targets, run_sales)
    stored_invoices = {row["invoice_id"] for rows in by_dc.values() for row in rows}
    approved, standing = settle(targets, keys, stored_invoices, inventory, log)
    return Audit(
        acked=stored.acked,
        stored_once=stored.found,
        missing=len(stored.missing),
        duplicated=len(stored.duplicated),
        stored_unanswered=len(unanswered),
        unexplained=len(stored.unexpected) - len(unanswered),
        stock_ok=stock_ok,
        stock_wrong=stock_wrong,
        charges_approved=len(approved),
        charges_without_sale=sum(invoice_id_for(key) not in stored_invoices for key in standing),
        charges_voided=len(approved - standing),
    )


@dataclass(frozen=True)
class Outcome:
    scenario: str
    letter: str
    summary: str
    rate: float
    baseline_rate: float
    fault_ops: int
    fault_failed: int
    availability: float
    kept: float  # completed ops/s during the fault over the rate before it: tills that hang start fewer
    fault_p99_ms: float
    fault_s: float
    heal_s: float  # heal.yml's run (it waits until every service serves)
    recovery_s: float | None
    audit: Audit | None
    error: str = ""
    # Branches whose own API sold nothing after the run, with why (loadtest/probe.py).
    not_selling: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        # A fault the platform never recovers from fails, however clean the audit; so does
        # an API that no longer sells, though the tills' failover hid it from the rates.
        return (
            not self.error
            and self.recovery_s is not None
            and self.audit is not None
            and self.audit.passed
            and not self.not_selling
        )


def run_scenario(
    scenario: Scenario, targets: Targets, inventory: Path, results: Path, rate: float, before_s: float, after_s: float
) -> Outcome:
    directory = results / f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-chaos-{scenario.name}"
    directory.mkdir(parents=True, exist_ok=True)
    print(f"--> ({scenario.letter}) {scenario.name}: {scenario.summary} [{directory}]", flush=True)
    try:
        timeline = run_faults(scenario, targets, inventory, directory, rate, before_s, after_s)
        ops, keys = read_ops(directory)
        before = window(ops, timeline.load_start + 5, timeline.fault_start)
        during = window(ops, timeline.fault_start, timeline.fault_end)
        recovered = recovery_s(ops, timeline.fault_end, before.rate, timeline.load_end)
        outcome_audit = audit_run(targets, ops, keys, timeline, inventory, directory / "settle.log")
        # After the audit: the probe's sales are not the run's.
        not_selling = apis_not_selling(targets.api_by_branch)
        for branch, why in not_selling.items():
            print(f"    the API of branch {branch} sold nothing by itself after the run: {why}", flush=True)
    except (ChaosError, RuntimeError, OSError, DependencyUnavailable) as failure:
        print(f"    run failed: {failure}", flush=True)
        return Outcome(
            scenario.name, scenario.letter, scenario.summary, rate, 0, 0, 0, 0, 0, 0, 0, 0, None, None, str(failure)
        )  # fmt: skip
    return Outcome(
        scenario.name, scenario.letter, scenario.summary, rate, before.rate, during.ops, during.failed,
        during.availability, during.rate / before.rate if before.rate else 0.0, during.checkout_p99_ms,
        timeline.fault_end - timeline.fault_start,
        timeline.healed - timeline.fault_end, recovered,
        outcome_audit, not_selling=not_selling,
    )  # fmt: skip


def render(outcomes: list[Outcome]) -> str:
    head = (
        f"{'scenario':<24} {'rate/s':>6} {'fault s':>7} {'heal s':>6} {'ops':>5} {'avail':>7} {'kept':>5} "
        f"{'p99 ms':>7} {'recover':>8}  "
        f"{'acked':>5} {'once':>5} {'miss':>4} {'dup':>4} {'unans':>5} {'stock ok/bad':>12} "
        f"{'charged':>7} {'voided':>6} {'no sale':>7}  verdict"
    )
    lines = [head]
    for o in outcomes:
        name = f"({o.letter}) {o.scenario}"
        if o.audit is None:
            lines.append(f"{name:<24} run failed: {o.error}")
            continue
        a = o.audit
        recover = "never" if o.recovery_s is None else f"{o.recovery_s:.0f} s"
        lines.append(
            f"{name:<24} {o.baseline_rate:>6.1f} {o.fault_s:>7.0f} {o.heal_s:>6.0f} {o.fault_ops:>5} "
            f"{o.availability:>7.2%} {o.kept:>5.0%} "
            f"{o.fault_p99_ms:>7.0f} {recover:>8}  {a.acked:>5} {a.stored_once:>5} {a.missing:>4} "
            f"{a.duplicated:>4} {a.stored_unanswered:>5} {f'{a.stock_ok}/{a.stock_wrong}':>12} "
            f"{a.charges_approved:>7} {a.charges_voided:>6} {a.charges_without_sale:>7}  "
            f"{'PASS' if o.passed else 'FAIL'}"
            + (f" (no sale by the API of {', '.join(sorted(o.not_selling))})" if o.not_selling else "")
        )
    return "\n".join(lines)


LEGEND = """\
rate/s: completed ops/s before the fault. fault s: injection to the fault's end. heal s:
heal.yml's run. ops, avail, p99: operations started during the fault, the share completed
(sold or declined), the checkout's p99 at the till (retries included). kept: completed
ops/s during the fault over the rate before it (tills stuck waiting start fewer ops). recover: the fault's
end to the first 10 s with no failure and the rate back to 90 % ("never": not before the
load ended). acked/once/miss/dup: acknowledged sales, stored exactly once in every
DC, missing in some DC, stored twice. unans: stored sales whose answer the till never got.
stock ok/bad: sales whose stock movements are there once with the sold quantities.
charged: approved charges of the run's keys. voided: charges without a sale once the load
ended, which checkout-reconcile voided (playbooks/checkout_reconcile.yml). no sale: charges
still without a stored sale after that. verdict: PASS when the audit is clean (all of the
above, no sale 0), the platform recovered, and every region's API then sold one checkout
by itself (loadtest/probe.py)."""


def _outcome(saved: dict[str, Any]) -> Outcome:
    audit = saved.pop("audit")
    return Outcome(**saved, audit=Audit(**audit) if audit else None)


def save(outcomes: list[Outcome], results: Path, command: str, order: list[str]) -> Path:
    """The day's file: this run's scenarios replace the same scenarios of an earlier run
    that day, the others stay (one file holds the latest run of every scenario)."""
    results.mkdir(parents=True, exist_ok=True)
    stem = results / f"{datetime.now(UTC):%Y-%m-%d}-chaos"
    earlier: dict[str, Any] = {"commands": [], "outcomes": []}
    if stem.with_suffix(".json").exists():
        earlier = json.loads(stem.with_suffix(".json").read_text())
    by_name = {o["scenario"]: _outcome(o) for o in earlier["outcomes"]} | {o.scenario: o for o in outcomes}

    def place(o: Outcome) -> tuple[int, str]:  # scenario@LEVEL rows after their scenario's
        base = o.scenario.split("@")[0]
        return (order.index(base) if base in order else len(order), o.scenario)

    merged = sorted(by_name.values(), key=place)
    commands = [*earlier["commands"], command]
    record = {"commands": commands, "outcomes": [asdict(o) for o in merged]}
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2))
    runs = "\n".join(f"    {c}" for c in commands)
    text = f"# Fault scenarios under load\n\nRuns of the day:\n\n{runs}\n\n```\n{render(merged)}\n```\n\n{LEGEND}\n"
    stem.with_suffix(".md").write_text(text)
    return stem.with_suffix(".md")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inventory", type=Path, default=LAB_INVENTORY)
    parser.add_argument("--scenario", action="append", default=[], help="a scenario's name (repeat); default all")
    parser.add_argument("--list", action="store_true", help="print the scenarios and exit")
    parser.add_argument("--rate", type=float, default=50.0, help="checkout operations per second offered")
    parser.add_argument("--before-s", type=float, default=45.0, help="seconds of load before the fault")
    parser.add_argument("--after-s", type=float, default=60.0, help="seconds of load after the heal")
    parser.add_argument("--results", type=Path, default=COMMITTED_RESULTS, help="where the dated results go")
    parser.add_argument(
        "--write-level",
        choices=WRITE_LEVELS,
        help="redeploy the services at this Cassandra consistency level, fallback off, for these scenarios",
    )
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.before_s < 10 or args.after_s < 20:
        parser.error("--rate must be > 0, --before-s >= 10 and --after-s >= 20 (baseline and recovery need them)")
    try:
        targets = from_inventory(args.inventory)
    except InventoryError as error:
        print(f"chaos: {error}", file=sys.stderr)
        return 2
    known = scenarios(targets)
    if args.list:
        print("\n".join(f"({s.letter}) {s.name:<22} {s.summary}" for s in known.values()))
        return 0
    unknown = [name for name in args.scenario if name not in known]
    if unknown:
        parser.error(f"unknown scenario {', '.join(unknown)}; choose from {', '.join(known)}")
    chosen = [known[name] for name in args.scenario] if args.scenario else list(known.values())
    results = RESULTS / "chaos"
    results.mkdir(parents=True, exist_ok=True)
    try:
        play(args.inventory, HEAL, {}, results / "heal-first.log")
    except PlaybookError as error:
        print(f"chaos: the lab is not healthy before the first fault: {error}", file=sys.stderr)
        return 2
    if args.write_level:
        chosen = [replace(s, name=f"{s.name}@{args.write_level}") for s in chosen]
    outcomes = []
    try:
        with service_level(args.inventory, args.write_level, results / "service-level.log"):
            for scenario in chosen:
                outcomes.append(
                    run_scenario(scenario, targets, args.inventory, results, args.rate, args.before_s, args.after_s)
                )
                print(render(outcomes[-1:]).splitlines()[-1], flush=True)  # its row, as soon as it is known
    except (ChaosError, PlaybookError) as error:
        print(f"chaos: {error}", file=sys.stderr)
        if not outcomes:
            return 2
    print(render(outcomes))
    print(LEGEND)
    command = "./lab chaos " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"Saved {save(outcomes, args.results, command.strip(), list(known))}")
    return 0 if all(o.passed for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
