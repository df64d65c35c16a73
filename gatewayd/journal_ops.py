"""Journal maintenance: compaction (on a schedule and on demand) and its operation."""

from __future__ import annotations

import logging

import trio

from .journal.writer import JournalUnavailable
from .journal.compaction import encode_snapshot, latest_snapshot_seq, write_snapshot_and_prune
from .journal.files import compress_segment, is_compressed, list_segments
from .ops import operation

log = logging.getLogger("gatewayd.journal")


class Compactor:
    def __init__(self, core):
        self.core = core
        self._lock = trio.Lock()
        self.last_seq = latest_snapshot_seq(core.journal_dir)

    async def compact(self) -> dict:
        async with self._lock:
            core = self.core
            try:  # the history store's cursor as far on as it can be: compaction keeps what follows it
                await core.history.wait_applied()
            except JournalUnavailable:
                pass
            seq = core.state.seq
            encoded = encode_snapshot(seq, core.state.snapshot())  # on the loop: a consistent view
            # Records are written in seq order: once this marker is durable, so is all the snapshot
            # claims. A snapshot is never written ahead of the journal.
            await core.hub.publish("journal.compacting", {"snapshot_seq": seq})
            cfg = core.settings.journal
            result = await trio.to_thread.run_sync(
                lambda: write_snapshot_and_prune(core.journal_dir, seq, encoded,
                                                 max_age_seconds=cfg.history_max_age_days * 86400,
                                                 max_bytes=cfg.history_max_bytes,
                                                 keep_after_seq=core.cursors.lowest()))
            self.last_seq = seq
            await core.hub.publish("journal.compacted", {
                "snapshot_seq": seq, "snapshot_bytes": result.snapshot_bytes,
                "segments_deleted": result.segments_deleted}, durable=False)
            log.info("journal: snapshot at seq %d (%d bytes), %d segments deleted",
                     seq, result.snapshot_bytes, len(result.segments_deleted))
            return {"snapshot_seq": seq, "snapshot_bytes": result.snapshot_bytes,
                    "segments_deleted": result.segments_deleted}

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            await trio.sleep(1.0)
            if self.core.state.seq - self.last_seq >= self.core.settings.journal.snapshot_every:
                await self.compact()
            if self.core.settings.journal.compress_closed_segments:
                await self.compress_closed_segments()

    async def compress_closed_segments(self) -> list[str]:
        """Compress every closed segment still plain (all but the one being written), oldest first."""
        compressed = []
        async with self._lock:  # not while compaction decides which files to delete
            for _, path in list_segments(self.core.journal_dir)[:-1]:
                if not is_compressed(path):
                    await trio.to_thread.run_sync(compress_segment, path)
                    compressed.append(path.name)
        if compressed:
            log.info("journal: compressed %s", ", ".join(compressed))
        return compressed


@operation("journal.compact")
async def journal_compact(core) -> dict:
    compactor = core.service("compactor")
    return await compactor.compact()
