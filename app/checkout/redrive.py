"""checkout-redrive: inspect the dead-letter topic, fix what can be fixed, send it back.

`list` shows every dead letter not yet handled, with the consumer's reason and whether it
would pass the consumer's checks as it stands. `send` re-publishes those that pass to the
sales topic; `--fix P:O=FILE` replaces a letter's body with a corrected event first, and
`--skip P:O` gives one up for good. Letters that still fail stay for the next run.

Idempotent twice over. The redrive's own consumer group remembers what was handled: its
committed offset is the first unhandled letter of each partition, and the commit's
metadata lists the handled letters beyond it. And the consumer stores a sale by its
invoice id, so a letter sent twice (a crash between the send and the commit) is still
one sale.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata, TopicPartition

from checkout.config import Settings, get_settings
from checkout.consumer import Consumed, Poison, decode
from checkout.errors import DependencyUnavailable
from checkout.events import SaleEvent
from checkout.producer import make_producer, sale_record, send

GROUP = "checkout-dlq-redrive"
Where = tuple[int, int]  # (partition, offset) in the dead-letter topic


@dataclass(frozen=True, slots=True)
class Letter:
    where: Where
    key: bytes | None
    value: bytes | None
    headers: Mapping[str, str]

    @property
    def label(self) -> str:
        return f"{self.where[0]}:{self.where[1]}"


@dataclass(frozen=True, slots=True)
class Decision:
    letter: Letter
    action: str  # "send", "skip" or "keep"
    event: SaleEvent | None
    why: str


def parse_where(text: str) -> Where:
    partition, sep, offset = text.partition(":")
    if not sep or not partition.isdigit() or not offset.isdigit():
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET, e.g. 0:42")
    return int(partition), int(offset)


def parse_fix(text: str) -> tuple[Where, Path]:
    where, sep, path = text.partition("=")
    if not sep or not path:
        raise argparse.ArgumentTypeError(f"{text!r} is not PARTITION:OFFSET=FILE")
    return parse_where(where), Path(path)


def decide(
    letters: Sequence[Letter], fixes: Mapping[Where, bytes], skips: Iterable[Where]
) -> list[Decision]:
    """What `send` does with each letter: the consumer's own checks decide, on the fixed
    body where a fix was given."""
    skipped = set(skips)
    decisions = []
    for letter in letters:
        if letter.where in skipped:
            decisions.append(Decision(letter, "skip", None, "given up (--skip)"))
            continue
        fixed = letter.where in fixes
        body = fixes[letter.where] if fixed else letter.value
        verdict = decode(Consumed("", letter.where[0], letter.where[1], letter.key, body))
        source = "fixed body" if fixed else "as dead-lettered"
        if isinstance(verdict, Poison):
            decisions.append(
                Decision(letter, "keep", None, f"{source}: {verdict.reason}: {verdict.detail}")
            )
        else:
            decisions.append(Decision(letter, "send", verdict, f"{source}: a valid sale event"))
    return decisions


def commits(
    seen: Mapping[int, Sequence[int]],
    previous: Mapping[int, tuple[int, set[int]]],
    handled: Iterable[Where],
) -> dict[int, tuple[int, list[int]]]:
    """Per partition read this run: (first unhandled offset, handled offsets beyond it).
    `seen` is every offset read per partition, handled before or not; `previous` the last
    commit."""
    now: dict[int, set[int]] = {}
    for partition, offset in handled:
        now.setdefault(partition, set()).add(offset)
    result = {}
    for partition, offsets in seen.items():
        if not offsets and partition not in previous:
            continue
        position, done = previous.get(partition, (min(offsets, default=0), set()))
        done = done | now.get(partition, set())
        for offset in sorted(offsets):
            if offset not in done:
                break
            position = offset + 1
        result[partition] = (position, sorted(o for o in done if o >= position))
    return result


def _metadata(handled: Sequence[int]) -> str:
    return json.dumps({"handled": list(handled)})


def _handled(metadata: str | None) -> set[int]:
    try:
        return {int(o) for o in json.loads(metadata or "{}").get("handled", [])}
    except (ValueError, AttributeError, TypeError):
        return set()


class DeadLetterTopic:
    """The dead-letter topic as the redrive group sees it: read to the end, commit."""

    def __init__(self, settings: Settings) -> None:
        self._topic = settings.kafka_dlq_topic
        try:
            self._consumer = KafkaConsumer(
                bootstrap_servers=settings.kafka_bootstrap,
                group_id=GROUP,
                client_id=f"{GROUP}-{settings.region}",
                enable_auto_commit=False,
                auto_offset_reset="earliest",
            )
            partitions = self._consumer.partitions_for_topic(self._topic) or set()
        except KafkaError as error:
            raise DependencyUnavailable(f"cannot reach Kafka: {error}") from error
        if not partitions:
            raise DependencyUnavailable(f"the dead-letter topic {self._topic} does not exist")
        self._tps = [TopicPartition(self._topic, p) for p in sorted(partitions)]
        self._consumer.assign(self._tps)
        self.previous: dict[int, tuple[int, set[int]]] = {}
        for tp in self._tps:
            committed = self._consumer.committed(tp, metadata=True)
            if committed is not None and committed.offset >= 0:
                self.previous[tp.partition] = (committed.offset, _handled(committed.metadata))
                self._consumer.seek(tp, committed.offset)
            else:
                self._consumer.seek_to_beginning(tp)

    def read(self) -> tuple[list[Letter], dict[int, list[int]]]:
        """Every letter from the committed offsets up to the end as it was at the start,
        and those already handled dropped."""
        end = self._consumer.end_offsets(self._tps)
        letters: list[Letter] = []
        seen: dict[int, list[int]] = {tp.partition: [] for tp in self._tps}
        while any(self._consumer.position(tp) < end[tp] for tp in self._tps):
            for records in self._consumer.poll(timeout_ms=2000).values():
                for r in records:
                    if r.offset >= end[TopicPartition(r.topic, r.partition)]:
                        continue
                    seen[r.partition].append(r.offset)
                    if r.offset in self.previous.get(r.partition, (0, set()))[1]:
                        continue
                    headers = {k: v.decode(errors="replace") for k, v in r.headers or ()}
                    letters.append(Letter((r.partition, r.offset), r.key, r.value, headers))
        return letters, seen

    def commit(self, positions: Mapping[int, tuple[int, list[int]]]) -> None:
        self._consumer.commit(
            {
                TopicPartition(self._topic, p): OffsetAndMetadata(offset, _metadata(rest), -1)
                for p, (offset, rest) in positions.items()
            }
        )

    def close(self) -> None:
        self._consumer.close(autocommit=False)


def _publish(settings: Settings, decisions: Sequence[Decision]) -> None:
    producer = make_producer(settings, client_id=f"{GROUP}-{settings.region}")
    try:
        futures = [
            send(
                producer,
                settings.kafka_sales_topic,
                *sale_record(d.event, ("dlq-redriven-from", d.letter.label.encode())),
            )
            for d in decisions
            if d.event is not None
        ]
        for future in futures:
            future.get(timeout=settings.kafka_publish_timeout_s)
    finally:
        producer.close(timeout=settings.kafka_publish_timeout_s)


def invoice_of(value: bytes | None) -> str:
    """The invoice id a letter's body names, if it is JSON with one: what operators search."""
    try:
        body = json.loads(value or b"")
    except ValueError:
        return "?"
    return str(body.get("invoice_id", "?")) if isinstance(body, dict) else "?"


def _describe(decision: Decision) -> str:
    headers, invoice = decision.letter.headers, invoice_of(decision.letter.value)
    return (
        f"{decision.letter.label}  {decision.action:<4}  invoice={invoice} "
        f"reason={headers.get('dlq-reason', '?')} source={headers.get('dlq-source', '?')}  "
        f"{decision.why}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="checkout-redrive",
        description="Inspect the dead-letter topic; send fixed sale events back to sales.",
    )
    parser.add_argument("command", choices=("list", "send"), help="list: show; send: re-publish")
    parser.add_argument(
        "--fix", type=parse_fix, action="append", default=[], metavar="P:O=FILE",
        help="replace the body of the letter at partition P, offset O with the event in FILE",
    )  # fmt: skip
    parser.add_argument(
        "--skip", type=parse_where, action="append", default=[], metavar="P:O",
        help="give up the letter at P:O for good (send only)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    try:
        fixes = {where: path.read_bytes() for where, path in args.fix}
    except OSError as error:
        print(f"checkout-redrive: cannot read a fix: {error}", file=sys.stderr)
        return 2
    settings = get_settings()
    try:
        topic = DeadLetterTopic(settings)
    except DependencyUnavailable as error:
        print(f"checkout-redrive: {error}", file=sys.stderr)
        return 1
    try:
        letters, seen = topic.read()
        unknown = sorted({*fixes, *args.skip} - {letter.where for letter in letters})
        if unknown:
            names = ", ".join(f"{p}:{o}" for p, o in unknown)
            print(f"checkout-redrive: no unhandled dead letter at {names}", file=sys.stderr)
            return 2
        decisions = decide(letters, fixes, args.skip)
        for decision in decisions:
            print(_describe(decision))
        counts = {a: sum(d.action == a for d in decisions) for a in ("send", "skip", "keep")}
        if args.command == "list":
            print(f"{len(letters)} unhandled dead letter(s): {counts['send']} would be sent, "
                  f"{counts['keep']} would stay")  # fmt: skip
            return 0
        to_send = [d for d in decisions if d.action == "send"]
        _publish(settings, to_send)
        handled = [d.letter.where for d in decisions if d.action in ("send", "skip")]
        topic.commit(commits(seen, topic.previous, handled))
        print(f"sent {counts['send']}, skipped {counts['skip']}, kept {counts['keep']} "
              f"of {len(letters)} unhandled dead letter(s)")  # fmt: skip
        return 0
    except (KafkaError, DependencyUnavailable) as error:
        print(f"checkout-redrive: {error}", file=sys.stderr)
        return 1
    finally:
        topic.close()
