"""Building a realistic journal with the daemon's own code, and damaging copies of it.

A damage is described by where it starts (file, byte offset) so a check can tell which records
came before it: those must survive any start that does not refuse.
"""

from __future__ import annotations

import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from gatewayd import ops
from gatewayd.journal.files import list_segments, list_snapshots
from gatewayd.gateway import load_state, open_core
from tests.conftest import make_settings

AFTER_EVERYTHING = 1 << 62  # "the damage is after every record": nothing may be lost


async def _fill(core, count: int, compact_at: set[int]) -> None:
    devices = []
    for i in range(count):
        if i % 10 == 0:
            devices.append(await ops.call(core, "device.create", {"name": f"dev-{i}", "tags": ["t"]}))
        elif i % 3 == 0:
            device = core.state.devices.get(random.Random(i).choice(devices)["id"])
            await core.service("devices").store(device, "telemetry", {"payload": {"n": i, "text": "ü" * (i % 7)}},
                                                durable=i % 2 == 0)
        else:
            await ops.call(core, "apikey.create", {"name": f"key-{i}"})
        if i in compact_at:
            await ops.call(core, "journal.compact", {})


def build_journal(state_dir: Path, *, records: int = 300, pruned: bool = False) -> Path:
    """A journal of several small segments and two snapshots. With `pruned`, retention has deleted
    the segments covered by the newest snapshot, so that snapshot is the only copy of the state."""
    settings = make_settings(state_dir, journal={"segment_bytes": 4096, "history_max_age_days": 0.01})

    async def run() -> None:
        async with open_core(settings, online=False) as core:
            await _fill(core, records * 2 // 3, {records // 3})
            if pruned:
                old = time.time() - 7 * 86400
                for _, path in list_segments(core.journal_dir):
                    os.utime(path, (old, old))
            await ops.call(core, "journal.compact", {})
            await _fill(core, records // 3, set())

    trio.run(run)
    return state_dir / "journal"


@dataclass(frozen=True)
class LineSpan:
    seq: int
    start: int
    end: int  # offset just past the newline


def line_spans(path: Path) -> list[LineSpan]:
    spans, offset = [], 0
    for line in path.read_bytes().split(b"\n")[:-1]:
        seq = int(line[len(b'{"seq":'):line.index(b",")])
        spans.append(LineSpan(seq, offset, offset + len(line) + 1))
        offset += len(line) + 1
    return spans


def first_seq_at(spans: list[LineSpan], offset: int) -> int:
    for span in spans:
        if offset < span.end:
            return span.seq
    return AFTER_EVERYTHING


@dataclass
class Damage:
    kind: str          # truncate | flip | zero | garbage
    target: str        # file name inside the journal directory
    offset: int
    detail: str
    first_damaged_seq: int  # records with a smaller seq must survive a start that does not refuse
    must_start: bool   # damage a real power cut can leave (a torn tail): refusing would be a bug

    def __str__(self) -> str:
        return f"{self.kind} {self.target} @{self.offset} ({self.detail})"


def damage_copy(pristine: Path, work: Path, rng: random.Random) -> Damage:
    """Copy the pristine journal into `work` and damage one file of the copy at random."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(pristine, work)
    segments = list_segments(work)
    snapshots = list_snapshots(work)
    roll = rng.random()
    if roll < 0.15 and snapshots:
        _, path = rng.choice(snapshots)
        is_snapshot, is_last = True, False
    else:
        index = len(segments) - 1 if roll < 0.45 else rng.randrange(len(segments))
        path = segments[index][1]
        is_snapshot, is_last = False, index == len(segments) - 1
    data = bytearray(path.read_bytes())
    spans = [] if is_snapshot else line_spans(path)
    kind = rng.choice(["truncate", "truncate", "flip", "zero", "garbage"])
    offset = rng.randrange(max(len(data), 1))
    if kind == "truncate":
        detail = f"cut to {offset} of {len(data)} bytes"
        data = data[:offset]
    elif kind == "flip":
        count = rng.choice([1, 1, 1, 2, 3])
        where = sorted({offset, *(rng.randrange(len(data)) for _ in range(count - 1))})
        offset = where[0]
        for at in where:
            data[at] ^= rng.randrange(1, 256)
        detail = f"flipped bytes at {where}"
    elif kind == "zero":
        length = rng.randint(1, 512)
        data[offset:offset + length] = bytes(len(data[offset:offset + length]))
        detail = f"{length} zero bytes"
    else:
        offset = len(data)
        junk = bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
        data += junk
        detail = f"{len(junk)} random bytes appended"
    path.write_bytes(bytes(data))
    first = AFTER_EVERYTHING if is_snapshot else first_seq_at(spans, offset)
    # What a power cut can leave: the last segment cut short, or its final line garbled.
    torn_tail = is_last and (kind in ("truncate", "garbage") or (bool(spans) and offset >= spans[-1].start))
    return Damage(kind, path.name, offset, detail, first, must_start=torn_tail)


def normalized(state) -> dict:
    import json

    return json.loads(json.dumps(state.snapshot(), sort_keys=True, default=str))


class PristineStates:
    """The state the undamaged journal gives at each seq (computed on demand, cached)."""

    def __init__(self, journal: Path):
        self.journal = journal
        self.last_seq = load_state(journal, cut_tail=False)[0].seq
        self._cache: dict[int, dict] = {}

    def at(self, seq: int) -> dict:
        if seq not in self._cache:
            self._cache[seq] = normalized(load_state(self.journal, until_seq=seq, cut_tail=False)[0])
        return self._cache[seq]
