"""Torn and corrupted journals: hundreds of random truncations, byte flips, zeroed blocks and
appended garbage in segments and snapshots. Each damaged copy goes through the daemon's own start
path (`load_state`): it either starts with every record before the damage, or refuses with a
message naming the file, the line and the seq. Never anything else.

GATEWAYD_CORRUPTIONS=2000 runs more cases (default 400); GATEWAYD_SEED fixes the random seed.
"""

from __future__ import annotations

import os
import random
import re

import pytest

from gatewayd import ops
from gatewayd.journal.files import list_snapshots
from gatewayd.journal.reader import CorruptJournal, JournalReader
from gatewayd.gateway import load_state, open_core
from tests.conftest import DaemonProcess, make_settings
from tests.reliability.figures import count
from tests.reliability.journal_damage import AFTER_EVERYTHING, PristineStates, damage_copy, normalized

CASES = int(os.environ.get("GATEWAYD_CORRUPTIONS", "400"))
SEED = int(os.environ.get("GATEWAYD_SEED", str(random.randrange(1 << 30))))


def precise(exc: CorruptJournal) -> bool:
    text = str(exc)
    return (exc.path.exists() and exc.line >= 1 and exc.path.name in text
            and f"line {exc.line}" in text and re.search(r"seq \d+", text) is not None)


def check_one(journal, states: PristineStates, work, rng, variant: str) -> tuple[str, str | None]:
    """Damage a copy and start on it. Returns (outcome, problem or None)."""
    damage = damage_copy(journal, work, rng)
    if damage.target.startswith("snapshot-"):
        newest = list_snapshots(work)[-1][1].name == damage.target
        damage.must_start = variant == "full" or not newest
    try:
        state, _ = load_state(work)
    except CorruptJournal as exc:
        if damage.must_start:
            return "refused", f"{damage}: refused a damage a power cut can leave: {exc}"
        if not precise(exc):
            return "refused", f"{damage}: imprecise refusal: {exc!r}"
        if JournalReader(work).verify().ok:
            return "refused", f"{damage}: start refused but `journal verify` says OK"
        return "refused", None
    except Exception as exc:  # noqa: BLE001 - exactly what this test hunts
        return "crashed", f"{damage}: {type(exc).__name__}: {exc}"
    if damage.first_damaged_seq != AFTER_EVERYTHING and state.seq < damage.first_damaged_seq - 1:
        return "started", f"{damage}: started at seq {state.seq}, lost records before seq {damage.first_damaged_seq}"
    if damage.first_damaged_seq == AFTER_EVERYTHING and state.seq != states.last_seq:
        return "started", f"{damage}: started at seq {state.seq}, the journal had {states.last_seq}"
    if state.seq > states.last_seq or normalized(state) != states.at(state.seq):
        return "started", f"{damage}: the state at seq {state.seq} differs from the undamaged journal's"
    return "started", None


def test_random_damage_starts_with_everything_before_it_or_refuses_precisely(pristine, tmp_path):
    rng = random.Random(SEED)
    outcomes: dict[str, int] = {}
    problems = []
    for case in range(CASES):
        variant = "full" if case % 3 else "pruned"
        journal, states = pristine[variant]
        outcome, problem = check_one(journal, states, tmp_path / "work", rng, variant)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
        if problem:
            problems.append(f"case {case} ({variant}): {problem}")
    count("journal corruptions tried", CASES)
    assert not problems, f"seed {SEED}: {len(problems)} bad outcomes of {CASES}:\n" + "\n".join(problems[:20])
    assert outcomes.get("started", 0) > CASES // 10 and outcomes.get("refused", 0) > CASES // 10, outcomes


def test_repair_makes_every_refused_journal_startable(pristine, tmp_path):
    """After a refusal, `journal repair` sets the damage aside and the next start keeps what came before."""
    rng = random.Random(SEED + 1)
    problems, repaired = [], 0
    journal, states = pristine["full"]
    for case in range(CASES // 4):
        work = tmp_path / "work"
        damage = damage_copy(journal, work, rng)
        if damage.target.startswith("snapshot-"):
            continue
        try:
            load_state(work)
            continue
        except CorruptJournal:
            pass
        dropped = JournalReader(work).repair()
        try:
            state, _ = load_state(work)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"case {case}: {damage}: still refused after repair ({dropped}): {exc}")
            continue
        repaired += 1
        if damage.first_damaged_seq != AFTER_EVERYTHING and state.seq < damage.first_damaged_seq - 1:
            problems.append(f"case {case}: {damage}: repair lost records before the damage")
    count("journal repairs checked", repaired)
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems[:20])
    assert repaired > 0


async def test_a_cut_tail_is_kept_aside_and_the_journal_goes_on_from_there(tmp_path):
    settings = make_settings(tmp_path / "state", journal={"segment_bytes": 4096})
    async with open_core(settings, online=False) as core:
        for i in range(40):
            await ops.call(core, "apikey.create", {"name": f"k{i}"})
    journal = tmp_path / "state" / "journal"
    last = sorted(journal.glob("segment-*.jsonl"))[-1]
    data = last.read_bytes()
    last.write_bytes(data[:-7])  # the final record loses its end: a torn write
    async with open_core(settings, online=False) as core:
        assert core.state.seq == 39
        assert len(core.state.access.api_keys) == 39
        created = await ops.call(core, "apikey.create", {"name": "after"})
    assert list(journal.glob("segment-*.jsonl.torn-*")), "the cut bytes are kept beside the segment"
    state, _ = load_state(journal)
    assert state.seq == 40 and created["key_id"] in state.access.api_keys
    assert JournalReader(journal).verify().ok


@pytest.mark.parametrize("case", range(4))
def test_gatewayd_serve_on_a_damaged_journal_starts_or_exits_with_a_message(pristine, tmp_path, case):
    """A sample through the real program: no traceback, ever."""
    rng = random.Random(SEED + 100 + case)
    journal, _ = pristine["full"]
    state_dir = tmp_path / "state"
    while True:
        damage = damage_copy(journal, state_dir / "journal", rng)
        expect_refusal = case % 2 == 0
        try:
            load_state(state_dir / "journal", cut_tail=False)
            refused = False
        except CorruptJournal:
            refused = True
        if refused == expect_refusal:
            break
    daemon = DaemonProcess(state_dir)
    try:
        daemon.start()
        started = True
    except RuntimeError as exc:
        started, output = False, str(exc)
    finally:
        daemon.stop()
    if started:
        assert not expect_refusal, damage
        output = daemon.output()
        assert "Traceback" not in output, output
    else:
        assert expect_refusal, f"{damage}: {output}"
        assert "Traceback" not in output, output
        assert damage.target in output and "line" in output and "journal repair" in output, output
        assert daemon.proc.returncode not in (0, None)
