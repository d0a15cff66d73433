"""A sale event the consumer cannot store goes to the dead-letter topic; checkout-redrive
lists it, keeps it while it is still wrong, sends it once fixed, and a second run changes
nothing: the sale is stored once in every DC."""

from __future__ import annotations

import json
import re
import shlex
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from checkout.dataset import parse_lines
from checkout.domain import STORE_TZ
from checkout.events import event_from_row
from kafka import KafkaProducer

from .conftest import FIGURES
from .lab import DATASET, Inventory, SaleKey, rows_of_invoice, ssh, wait_for_sale

pytestmark = pytest.mark.lab

DEAD_LETTERED_WITHIN_S = 60.0


def _redrive(lab: Inventory, arguments: str) -> Any:
    return ssh(lab.address(lab.app_hosts()[0]), f"checkout-redrive {arguments}", timeout_s=120)


def _line_of(output: str, invoice: str) -> str | None:
    return next((line for line in output.splitlines() if f"invoice={invoice} " in line), None)


def _copies(dc_sessions: dict[str, Any], key: SaleKey) -> dict[str, int]:
    """How many times each DC stores the sale."""
    return {dc: len(rows_of_invoice(session, key)) for dc, session in dc_sessions.items()}


def test_a_dead_letter_is_fixed_sent_once_and_stored_once(lab: Inventory, dc_sessions: dict[str, Any]) -> None:
    row = parse_lines(DATASET.read_text("utf-8").splitlines()).rows[0]
    event = json.loads(event_from_row(row, lab.region(lab.app_hosts()[0])).to_json_bytes())
    event["invoice_id"] = invoice = f"redrive-{uuid.uuid4()}"
    # Today, not the dataset's day: the replay test counts exactly the dataset's sales there.
    event["sold_at"] = datetime.now(STORE_TZ).isoformat(timespec="seconds")
    broken = json.loads(json.dumps(event))
    broken["lines"][0]["quantity"] = 0
    producer = KafkaProducer(bootstrap_servers=lab.kafka_bootstrap(), acks="all")
    try:
        producer.send("checkout-sales", key=event["branch"].encode(), value=json.dumps(broken).encode()).get(30)
    finally:
        producer.close()
    sent_at = time.perf_counter()

    # The consumer dead-letters it; list shows it and would keep it (still invalid).
    line = None
    while line is None and time.perf_counter() - sent_at < DEAD_LETTERED_WITHIN_S:
        listed = _redrive(lab, "list")
        assert listed.returncode == 0, listed.stderr
        line = _line_of(listed.stdout, invoice)
        if line is None:
            time.sleep(2)
    assert line is not None, f"no dead letter for {invoice} within {DEAD_LETTERED_WITHIN_S} s"
    FIGURES["dead letter listed by checkout-redrive, s after the send"] = round(time.perf_counter() - sent_at, 1)
    where = line.split()[0]
    assert re.fullmatch(r"\d+:\d+", where), line
    assert " keep " in line, line
    assert "reason=invalid_event" in line, line

    # Sent as it is, it stays: still invalid.
    kept = _redrive(lab, "send")
    assert kept.returncode == 0, kept.stderr
    assert " keep " in (_line_of(kept.stdout, invoice) or ""), kept.stdout

    # A position that is no unhandled letter is refused, and nothing is sent.
    refused = _redrive(lab, "send --skip 0:999999999")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no unhandled dead letter at 0:999999999" in refused.stderr

    # Fixed: sent, then stored once in every DC.
    fix = "/tmp/redrive-fix.json"
    written = ssh(lab.address(lab.app_hosts()[0]), f"printf %s {shlex.quote(json.dumps(event))} > {fix}")
    assert written.returncode == 0, written.stderr
    fixed = _redrive(lab, f"send --fix {where}={fix}")
    assert fixed.returncode == 0, fixed.stderr
    assert " send " in (_line_of(fixed.stdout, invoice) or ""), fixed.stdout
    FIGURES["checkout-redrive send --fix"] = fixed.stdout.splitlines()[-1]
    key = SaleKey.of(event)
    for dc, session in dc_sessions.items():
        assert wait_for_sale(session, key, 1)[0] is not None, f"DC {dc}: the redriven sale is not stored"
    assert set(_copies(dc_sessions, key).values()) == {1}, _copies(dc_sessions, key)

    # Again: the letter is handled, so it is neither listed nor accepted as a fix.
    again = _redrive(lab, "list")
    assert again.returncode == 0, again.stderr
    assert _line_of(again.stdout, invoice) is None, again.stdout
    twice = _redrive(lab, f"send --fix {where}={fix}")
    assert twice.returncode == 2, twice.stdout + twice.stderr
    time.sleep(5)
    assert set(_copies(dc_sessions, key).values()) == {1}, _copies(dc_sessions, key)
    FIGURES["redriven sale rows per DC after a second run"] = _copies(dc_sessions, key)
