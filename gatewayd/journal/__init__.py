"""The append-only journal: record format, writer with group commit, reader, snapshots."""

from .record import Record, RecordError, decode_line, encode_line, utc_now_iso
from .reader import CorruptJournal, JournalReader
from .writer import JournalUnavailable, JournalWriter
from .lock import JournalLocked, JournalLock

__all__ = [
    "Record", "RecordError", "decode_line", "encode_line", "utc_now_iso",
    "CorruptJournal", "JournalReader", "JournalUnavailable", "JournalWriter",
    "JournalLocked", "JournalLock",
]
