"""Bringing the history store up to date with the journal, in the worker thread or in a child process.

Applying a long stretch of journal (a first start over a journal without a store, a rebuild)
allocates millions of short-lived objects and grows SQLite's caches. Whatever the process keeps
of that afterwards stays in its memory for good: a few objects outliving the work pin CPython's
1 MiB arenas, and glibc's heap keeps what it cannot trim (a first start over 200,000 records left
+10 MiB of arenas, 9 MiB of them free pools, besides SQLite's heap growth). So a stretch of at
least CHILD_RECORDS records is applied by a short-lived child process running this module, with
the very same writer code; the daemon then reopens the store at the position the child committed
and applies whatever is left in its worker thread. Each batch commits its records and the
position together, so a child killed at any moment (kill -9 included) leaves a store that any
later catch-up resumes from; if the child fails for any reason, the daemon catches up itself.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Callable, Collection

import orjson

from ..journal.reader import CorruptJournal, JournalReader
from ..logs import level_name, setup_logging
from .writer import HistoryWriter, open_writer

log = logging.getLogger("gatewayd.history")

CATCH_UP_BATCH = 5000
# Below this many records the worker thread applies them: a child costs ~0.3 s to start, and a
# short stretch leaves little behind.
CHILD_RECORDS = 20_000
# The child reports after each batch and after every PROGRESS_RECORDS records read; silence for
# STALL_SECONDS means it is stuck: it is killed and the daemon catches up itself.
PROGRESS_RECORDS = 50_000
STALL_SECONDS = 120.0

def apply_journal(writer: HistoryWriter, journal_dir: Path, until_seq: int, *, batch_size: int | None = None,
                  progress: Callable[[int], None] | None = None) -> int:
    """Blocking: apply the journal's records after the store's position up to `until_seq`, a
    transaction per `batch_size` records the store keeps. Returns how many seqs it moved past.
    `progress(seq read up to)` is called after each batch and every PROGRESS_RECORDS records read."""
    if writer.position >= until_seq:
        return 0
    before = writer.position
    batch_size = batch_size or CATCH_UP_BATCH
    wants = writer.wants
    batch = []
    read_until = writer.position
    report_at = read_until + PROGRESS_RECORDS
    first_seen = None
    try:
        for record in JournalReader(journal_dir).records(after_seq=writer.position, until_seq=until_seq):
            if first_seen is None:
                first_seen = record.seq
                if record.seq > writer.position + 1:
                    log.warning("history store: records %d to %d are no longer in the journal; the store "
                                "starts after them", writer.position + 1, record.seq - 1)
            read_until = record.seq
            if wants(record.type):
                batch.append(record)
                if len(batch) >= batch_size:
                    writer.apply(batch, read_until)
                    batch = []
                    if progress is not None:
                        progress(read_until)
                        report_at = read_until + PROGRESS_RECORDS
            if progress is not None and read_until >= report_at:
                progress(read_until)
                report_at = read_until + PROGRESS_RECORDS
    except CorruptJournal as exc:
        # Replay did not need these lines (a snapshot covers them); the store does without them.
        log.error("history store: the journal cannot be read past seq %d (%s); the store skips to seq %d "
                  "(see `gatewayd journal verify`)", read_until, exc, until_seq)
    if batch or read_until > writer.position:
        writer.apply(batch, read_until)
    if writer.position < until_seq:
        writer.conn.execute("BEGIN IMMEDIATE")
        writer.skip_to(until_seq)
        writer.conn.execute("COMMIT")
    return writer.position - before


def worth_a_child(records: int) -> bool:
    return records >= CHILD_RECORDS


def child_command() -> list[str]:
    return [sys.executable, "-m", "gatewayd.history.catch_up"]


def _child_environment() -> dict[str, str]:
    """The child imports this very checkout of gatewayd, whatever the current directory."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=root + (os.pathsep + path if path else ""))


async def run_child(store: Path, journal_dir: Path, until_seq: int, comm_types: Collection[str] | None, *,
                    lock_fd: int | None = None, batch_size: int | None = None,
                    stall_seconds: float | None = None) -> bool:
    """Apply the journal up to `until_seq` to the store (closed by the caller meanwhile) in a child
    process. True when the child got there; False (and why, logged) otherwise: the caller
    catches up itself from wherever the child's last commit left the store. Cancelling kills
    the child. `lock_fd`: the journal lock, which the child then holds too, so that no other
    gatewayd opens the state directory while a child the daemon left behind (kill -9) may still
    write to the store (it stops after its batch)."""
    import trio  # here: the child imports this module too, and needs no event loop

    request = orjson.dumps({"store": str(store), "journal": str(journal_dir), "until": until_seq,
                            "comm_types": None if comm_types is None else sorted(comm_types),
                            "batch": batch_size or CATCH_UP_BATCH, "parent": os.getpid(),
                            "log_level": level_name(logging.getLogger().getEffectiveLevel())})
    stall_seconds = stall_seconds or STALL_SECONDS
    failure = None
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, child_command(), stdin=request,
                                              stdout=subprocess.PIPE, check=False, env=_child_environment(),
                                              pass_fds=() if lock_fd is None else (lock_fd,)))
        pending = b""
        done = False
        while True:
            chunk = None
            with trio.move_on_after(stall_seconds):
                chunk = await process.stdout.receive_some(4096)
            if chunk is None:
                failure = f"no progress for {stall_seconds:g} s"
                process.kill()
                break
            if not chunk:
                break
            *lines, pending = (pending + chunk).split(b"\n")
            done = done or any(line.startswith(b"done ") for line in lines)
    if failure is None and process.returncode != 0:
        failure = f"exit status {process.returncode}"
    if failure is None and not done:
        failure = "it ended without finishing"
    if failure is not None:
        log.error("history store: catching up in a child process failed (%s); catching up in the daemon", failure)
        return False
    return True


def _report(parent: int, seq: int) -> None:
    """After each batch: a child whose daemon died (kill -9) stops here rather than write on."""
    if os.getppid() != parent:
        raise SystemExit("gatewayd history catch-up: the daemon is gone")
    sys.stdout.write(f"applied {seq}\n")
    sys.stdout.flush()


def _stored_as_records(record) -> list:
    """The child keeps the communications of `comm_types` as their records (as the daemon's writer
    does) and renders none: with the types given the writer never calls its mapper."""
    raise AssertionError("the catch-up process renders no communications")


def main() -> int:
    """The child: one JSON request on stdin (store, journal, until, comm_types, batch, parent, log_level);
    prints `applied SEQ` as it goes and `done SEQ` at the end."""
    request = orjson.loads(sys.stdin.buffer.read())
    parent = request["parent"]
    if os.getppid() != parent:  # the daemon died before this process got going
        raise SystemExit("gatewayd history catch-up: the daemon is gone")
    setup_logging(request["log_level"])
    comm_types = request["comm_types"]
    writer = open_writer(Path(request["store"]), _stored_as_records if comm_types else None,
                         frozenset(comm_types or ()))
    try:
        apply_journal(writer, Path(request["journal"]), request["until"], batch_size=request["batch"],
                      progress=partial(_report, parent))
        sys.stdout.write(f"done {writer.position}\n")
        sys.stdout.flush()
    finally:
        writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
