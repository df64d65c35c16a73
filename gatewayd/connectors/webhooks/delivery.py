"""The pure parts of a delivery: which events a webhook takes, the request body and headers, the
signature, and how long to wait before the next try."""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from typing import Any, Iterable

import orjson

from ...journal.record import Record
from ...northbound.shared import SharedEvent, SharedEvents

RETRY_FIRST = 1.0  # seconds before the first retry; doubled each time
RETRY_LONGEST = 300.0


@dataclass(frozen=True, slots=True)
class Pending:
    """One event waiting for delivery."""
    seq: int
    event_id: str
    event: str
    ts: str
    body: dict[str, Any]
    shared: SharedEvent | None = None  # the rendering every sender shares (its JSON encoded once)

    @property
    def json(self) -> bytes:
        return self.shared.json if self.shared is not None else orjson.dumps(self.body)


def wanted(events: frozenset[str], event: str) -> bool:
    return "*" in events or event in events


def pending_events(records: Iterable[Record], events: frozenset[str], rendered: SharedEvents) -> list[Pending]:
    out = []
    for record in records:
        for shared in rendered.of(record):
            ev = shared.event
            if wanted(events, ev.event):
                out.append(Pending(record.seq, ev.body["event_id"], ev.event, record.ts, ev.body, shared))
    return out


def encode(chunk: list[Pending], batch: bool) -> bytes:
    """The request body: one event's JSON, or a JSON array of the chunk's events."""
    if batch:
        return b"[" + b",".join([p.json for p in chunk]) + b"]"
    return chunk[0].json


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def request_headers(chunk: list[Pending], body: bytes, secret: str, batch: bool) -> dict[str, str]:
    """X-Gatewayd-Delivery: the event id (`<seq>.<n>`), or `<first>..<last>` for a batch."""
    first, last = chunk[0], chunk[-1]
    headers = {"Content-Type": "application/json",
               "X-Gatewayd-Event": "batch" if batch else first.event,
               "X-Gatewayd-Delivery": f"{first.event_id}..{last.event_id}" if batch else first.event_id}
    if secret:
        headers["X-Gatewayd-Signature"] = signature(secret, body)
    return headers


def retry_delay(failures: int, first: float = RETRY_FIRST, rng: random.Random | None = None) -> float:
    """Exponential backoff with jitter: after n failures, between half and all of first * 2**(n-1),
    at most RETRY_LONGEST."""
    ceiling = min(RETRY_LONGEST, first * 2 ** min(failures - 1, 30))
    return ceiling * (0.5 + 0.5 * (rng or random).random())


def finished_through(chunk_end: int, events: list[Pending], last_record_seq: int) -> int:
    """The last seq whose every event is handled once events[:chunk_end] are (the cursor)."""
    if chunk_end < len(events):
        return events[chunk_end].seq - 1
    return last_record_seq
