"""The history store as pure synchronous code: records in, rows out, queries, retention."""

from __future__ import annotations

import random
import sqlite3
import string
from datetime import datetime, timedelta, timezone
from unittest.mock import patch

from hypothesis import given, settings, strategies as st

import orjson

from gatewayd.history import comm_chunks, queries, retention, telemetry_windows
from gatewayd.history.writer import HistoryWriter
from gatewayd.journal.record import Record
from gatewayd.connectors.monitor.resiot import COMM_RX, Communication

T0 = datetime(2026, 6, 1, tzinfo=timezone.utc)


def ts(seconds: float) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def telemetry(seq: int, at: float, device: str, payload: dict) -> Record:
    return Record(seq, ts(at), "device.telemetry", {"device_id": device, "payload": payload})


def punches(seq: int, at: float, source: str, items: list[tuple[int, str]], held: bool = False) -> Record:
    return Record(seq, ts(at), "attendance.punches", {
        "source": source, "connector": "http", "tz": "UTC", "held": held,
        "punches": [{"enrollid": e, "time": t, "mode": 1, "inout": 0, "event": 0, "utc": t.replace(" ", "T") + "Z"}
                    for e, t in items]})


def comm_mapper(record: Record):
    if record.type != "device.telemetry":
        return []
    return [Communication(comm_type=COMM_RX, connector="ws", dev_eui=record.data["device_id"],
                          dt=datetime.fromisoformat(record.ts), seq=record.seq, payload=b"x", extra={"n": 1})]


# Bookkeeping that depends on how the records were cut into batches, not on what is stored.
_BATCH_META = ("hourly_until", "raw_from_hour", "regrouped_seq", "pending_telemetry", "recent_from_ts")


def telemetry_entries(conn: sqlite3.Connection) -> list[tuple]:
    """Every telemetry message stored, wherever it sits: (device, ts, seq, device_ts, payload)."""
    out = [(device, ts, seq, device_ts, payload)
           for device, blob in conn.execute("SELECT device, data FROM telemetry")
           for ts, seq, device_ts, payload in telemetry_windows.decode(blob)]
    meta = dict(conn.execute("SELECT name, value FROM meta"))
    numbers = dict(conn.execute("SELECT id, n FROM device_ids WHERE retired_seq IS NULL"))
    for ts, seq, text in telemetry_windows.pending_records(conn, int(meta.get("regrouped_seq") or 0),
                                                           meta.get("recent_from_ts")):
        data = orjson.loads(text)
        out.append((numbers[data["device_id"]], ts, seq, data.get("device_ts"), data["payload"]))
    return sorted(out, key=repr)


def dump(conn: sqlite3.Connection) -> dict:
    """Every row of every table, in a fixed order (telemetry as one set, wherever it sits)."""
    out = {"meta": sorted(conn.execute(f"SELECT * FROM meta WHERE name NOT IN {_BATCH_META}"))}
    for table in ("device_ids", "telemetry_hourly", "punches"):
        out[table] = sorted(conn.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    out["communications"] = comm_chunks.every_record(conn)  # however they were cut into chunks
    out["telemetry"] = telemetry_entries(conn)
    return out


def test_punches_are_stored_once_held_ones_released_or_dropped(tmp_path):
    records = [
        punches(1, 0, "A", [(1, "2026-06-01 08:00:00"), (2, "2026-06-01 08:01:00")]),
        punches(2, 1, "A", [(1, "2026-06-01 08:00:00"), (3, "2026-06-01 08:02:00")]),  # one resend
        punches(3, 2, "P", [(1, "2026-06-01 08:00:00")], held=True),
        punches(4, 3, "Q", [(1, "2026-06-01 08:00:00")], held=True),
        Record(5, ts(4), "terminal.approved", {"sn": "P"}),
        Record(6, ts(5), "terminal.rejected", {"sn": "Q"}),
        punches(7, 6, "A", [(4, "2026-06-01 08:03:00"), (4, "2026-06-01 08:03:00")]),  # twice in one record
    ]
    writer = HistoryWriter(tmp_path / "h.db")
    writer.apply(records)
    conn = writer.conn
    stored = [(p.id, p.source, p.enrollid, p.seq) for p in queries.select_punches(conn)]
    # Ids go by punch in the records, the resends (3, 8) and the rejected one (6) included.
    assert stored == [(1, "A", 1, 1), (2, "A", 2, 1), (4, "A", 3, 2), (5, "P", 1, 3), (7, "A", 4, 7)]
    one_by_one = HistoryWriter(tmp_path / "one_by_one.db")
    for record in records:
        one_by_one.apply([record])
    assert [(p.id, p.seq) for p in queries.select_punches(one_by_one.conn)] == [(i, s) for i, _, _, s in stored]
    assert one_by_one.next_punch_id == writer.next_punch_id == 9
    many = [(9, f"2026-06-02 {n // 60:02d}:{n % 60:02d}:00", 0, 0) for n in range(2 * queries.PUNCH_KEYS_PER_QUERY)]
    assert queries.punch_seqs(conn, "A", [*many, (1, "2026-06-01 08:00:00", 0, 0), (3, "2026-06-01 08:02:00", 0, 0)]) \
        == {(1, "2026-06-01 08:00:00", 0, 0): (1, False), (3, "2026-06-01 08:02:00", 0, 0): (2, False)}
    assert queries.punch_seqs(conn, "Q", [(1, "2026-06-01 08:00:00", 0, 0)]) == {}  # dropped: its key is free
    assert queries.punch_seqs(conn, "P", [(1, "2026-06-01 08:00:00", 0, 0)]) == {(1, "2026-06-01 08:00:00", 0, 0): (3, False)}
    assert [p.id for p in queries.select_punches(conn, after=4, limit=1)] == [5]
    assert [p.id for p in queries.select_punches(conn, sn="A", newest_first=True, limit=2)] == [7, 4]
    assert writer.position == 7


def test_telemetry_messages_and_buckets_span_recent_clustered_and_hourly(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    records = [telemetry(i + 1, i * 60, "d1", {"t": i, "s": "x"}) for i in range(180)]  # 3 hours, 1 a minute
    writer.apply(records[:100])
    writer.apply(records[100:])
    conn = writer.conn
    items = queries.telemetry_messages(conn, "d1", None, None, 5)
    assert [i["payload"]["t"] for i in items] == [175, 176, 177, 178, 179]
    start = int(T0.timestamp() * 1_000_000)
    hours = queries.telemetry_series(conn, "d1", "t", start, start + 3 * 3_600_000_000, 3_600_000_000)
    assert [(p["min"], p["max"], p["count"], p["mean"]) for p in hours] == [
        (0, 59, 60, 29.5), (60, 119, 60, 89.5), (120, 179, 60, 149.5)]
    assert queries.telemetry_series(conn, "d1", "s", start, start + 3 * 3_600_000_000, 3_600_000_000) == []
    # Hours that are over have their figures: whole-hour buckets come from them, the same answer.
    assert conn.execute("SELECT count(*) FROM telemetry_hourly").fetchone()[0] == 2  # hours 0 and 1 of key t
    minutes = queries.telemetry_series(conn, "d1", "t", start, start + 3 * 3_600_000_000, 1_800_000_000)
    assert [p["count"] for p in minutes] == [30] * 6
    # Raw messages of the first two hours go; their figures stay.
    retention.drop_raw_before(writer, start + 2 * 3_600_000_000)
    assert queries.telemetry_series(conn, "d1", "t", start, start + 3 * 3_600_000_000, 3_600_000_000) == hours
    assert [p["count"] for p in queries.telemetry_series(conn, "d1", "t", start, start + 3 * 3_600_000_000,
                                                          1_800_000_000)] == [60, 60, 30, 30]
    assert len(queries.telemetry_messages(conn, "d1", None, None, 1000)) == 60


def test_byte_budget_drops_the_oldest_day_first_never_punches(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    def noise(i: int) -> str:  # the store compresses: padding that does not
        return "".join(random.Random(i).choices(string.ascii_letters, k=3000))

    writer.apply([telemetry(i + 1, i * 3600, "d1", {"v": i, "pad": noise(i)}) for i in range(24 * 5)]
                 + [punches(1000, 0, "A", [(1, "2026-06-01 08:00:00")])])
    policy = retention.RetentionPolicy(telemetry_raw_days=1000, telemetry_hourly_days=1000,
                                       communications_days=1000, max_bytes=200_000)
    now = int((T0 + timedelta(days=5)).timestamp() * 1_000_000)
    dropped = retention.enforce(writer, policy, now)
    assert dropped and dropped[0]["before"] == "2026-06-02T00:00:00.000000Z"
    remaining = [i["payload"]["v"] for i in queries.telemetry_messages(writer.conn, "d1", None, None, 1000)]
    assert remaining and remaining == list(range(remaining[0], 120)) and remaining[0] % 24 == 0
    assert retention.used_bytes(writer.conn) <= 200_000
    assert len(list(queries.select_punches(writer.conn))) == 1


_devices = st.sampled_from(["d1", "d2", "d3"])
_payloads = st.dictionaries(st.sampled_from(["t", "h", "s"]),
                            st.one_of(st.integers(-1000, 1000), st.floats(-1e6, 1e6, allow_nan=False), st.text(max_size=3),
                                      st.booleans()), max_size=3)
_events = st.one_of(
    st.tuples(st.just("telemetry"), _devices, _payloads),
    st.tuples(st.just("punch"), st.sampled_from(["A", "P"]),
              st.lists(st.tuples(st.integers(1, 4), st.integers(0, 5)), min_size=1, max_size=4), st.booleans()),
    st.tuples(st.just("approve"), st.sampled_from(["A", "P"])),
    st.tuples(st.just("reject"), st.sampled_from(["A", "P"])),
    st.tuples(st.just("delete_device"), _devices),
)


def _records(events, gaps) -> list[Record]:
    records, at = [], 0.0
    for seq, (event, gap) in enumerate(zip(events, gaps), start=1):
        at += gap
        kind = event[0]
        if kind == "telemetry":
            records.append(telemetry(seq, at, event[1], event[2]))
        elif kind == "punch":
            _, source, items, held = event  # a record may repeat a punch, or one stored already
            records.append(punches(seq, at, source, [(e, f"2026-06-01 08:{minute:02d}:00") for e, minute in items],
                                   held))
        elif kind in ("approve", "reject"):
            records.append(Record(seq, ts(at), f"terminal.{'approved' if kind == 'approve' else 'rejected'}",
                                  {"sn": event[1]}))
        else:
            records.append(Record(seq, ts(at), "device.deleted", {"device_id": event[1]}))
    return records


def _messages_of(records: list[Record], device: str) -> list[dict]:
    """What the telemetry query should give for a device: its messages since it was last deleted."""
    messages = []
    for record in records:
        if record.data.get("device_id") != device:
            continue
        if record.type == "device.deleted":
            messages = []
        else:
            messages.append({"seq": record.seq, "ts": record.ts, "payload": record.data["payload"]})
    return sorted(messages, key=lambda m: (m["ts"], m["seq"]))


@settings(max_examples=60)
@given(events=st.lists(_events, max_size=60), data=st.data())
def test_store_rebuilt_from_the_journal_equals_the_store_fed_live(tmp_path_factory, events, data):
    gaps = data.draw(st.lists(st.floats(0, 40_000), min_size=len(events), max_size=len(events)))
    records = _records(events, gaps)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(records)), max_size=6)))
    directory = tmp_path_factory.mktemp("history")
    live = HistoryWriter(directory / "live.db", comm_mapper)
    # The live store regroups its telemetry every few records, the rebuilt one only when an hour passed.
    with patch.object(telemetry_windows, "REGROUP_RECORDS", data.draw(st.integers(1, 5))):
        for start, end in zip([0, *cuts], [*cuts, len(records)]):
            live.apply(records[start:end])
            if data.draw(st.booleans()):
                live.close()  # a restart: what the writer keeps in memory comes back from the file
                live = HistoryWriter(directory / "live.db", comm_mapper)
                live.apply(records[max(0, start - 3):end])  # a batch seen again after a restart: no effect
    rebuilt = HistoryWriter(directory / "rebuilt.db", comm_mapper)
    rebuilt.apply(records)
    for device in ("d1", "d2", "d3"):
        expected = _messages_of(records, device)
        for writer in (live, rebuilt):
            assert queries.telemetry_messages(writer.conn, device, None, None, 1000) == expected
            assert queries.telemetry_messages(writer.conn, device, None, None, 2) == expected[-2:]
    policy = retention.RetentionPolicy(telemetry_raw_days=1, telemetry_hourly_days=2, communications_days=1)
    now = int((T0 + timedelta(days=data.draw(st.integers(0, 30)) / 10)).timestamp() * 1_000_000)
    for writer in (live, rebuilt):
        retention.enforce(writer, policy, now)
    assert dump(live.conn) == dump(rebuilt.conn)
    # How far hourly figures reach depends on the batches; what a chart reads does not.
    for device in ("d1", "d2", "d3"):
        for every in (60_000_000, 3_600_000_000):
            assert queries.telemetry_series(live.conn, device, "t", 0, 1 << 60, every) == \
                queries.telemetry_series(rebuilt.conn, device, "t", 0, 1 << 60, every)


def test_an_hour_a_deleted_message_closed_gets_its_figures_however_the_batches_fell(tmp_path):
    records = [telemetry(1, 0, "d2", {"t": 0}), telemetry(2, 3600, "d1", {}),
               Record(3, ts(3600), "device.deleted", {"device_id": "d1"})]
    live, rebuilt = HistoryWriter(tmp_path / "live.db"), HistoryWriter(tmp_path / "rebuilt.db")
    live.apply(records[:2])
    live.apply(records[2:])
    rebuilt.apply(records)
    policy = retention.RetentionPolicy(telemetry_raw_days=1, telemetry_hourly_days=2)
    for writer in (live, rebuilt):
        retention.enforce(writer, policy, int(T0.timestamp() * 1_000_000))
    assert dump(live.conn) == dump(rebuilt.conn)
    assert dump(live.conn)["telemetry_hourly"]  # hour 0 of d2 is over: a message of hour 1 came


def test_communication_pages_go_on_where_the_last_one_stopped(tmp_path):
    def two_each(record):  # two items per record, as a LoRaWAN uplink has (comm_gwrx, comm_rx)
        if record.type != "device.event":
            return []
        return [Communication(comm_type=kind, connector="ws", dev_eui=record.data["device_id"],
                              dt=datetime.fromisoformat(record.ts), seq=record.seq) for kind in ("comm_gwrx", COMM_RX)]

    records = [Record(i, ts(i), "device.event", {"device_id": "d1" if i % 3 else "d2"}) for i in range(1, 31)]
    writer = HistoryWriter(tmp_path / "h.db", two_each, {"device.event"})
    writer.apply(records)

    def pages(scan: int, **filters) -> list[tuple[int, int]]:
        seen, after = [], None
        while True:
            items, resume = queries.communications(writer.conn, start_us=None, end_us=None, limit=4 + 1,
                                                   after=after, mapper=two_each, scan=scan,
                                                   **{"device": None, "comm_type": None, **filters})
            seen += [(i["seq"], i["item"]) for i in items[:4]]
            cursor = items[3]["cursor"] if len(items) > 4 else resume
            if cursor is None:
                return seen
            after = tuple(int(part) for part in cursor.split("."))

    everything = [(r.seq, n) for r in records for n in (0, 1)]
    assert pages(1000) == pages(2) == pages(1) == everything
    assert pages(1, device="d2") == pages(1000, device="d2") == [(s, n) for s, n in everything if s % 3 == 0]
    assert pages(3, comm_type=COMM_RX) == [(s, 1) for s in range(1, 31)]


def test_communications_read_back_as_the_monitoring_stream_shows_them(tmp_path):
    from gatewayd.gateway import comm_tables

    communications = comm_tables().communications

    records = [Record(1, ts(0), "device.telemetry", {"device_id": "d1", "name": "n", "connector": "ws", "msg_id": 7,
                                                     "payload": {"t": 21.5, "deep": {"a": [1]}, "s": "ü"}}),
               Record(2, ts(1), "device.event", {"device_id": "d1", "name": "n", "connector": "ws", "event": "door",
                                                 "payload": {"zone": 2}})]
    writer = HistoryWriter(tmp_path / "h.db", communications)
    writer.apply(records)
    stored, resume = queries.communications(writer.conn, start_us=None, end_us=None, device="d1", comm_type=None,
                                            limit=10, mapper=communications)
    expected = [c for r in records for c in communications(r)]
    assert [(s["seq"], s["type"], bytes.fromhex(s["payload_hex"]), s.get("extra", {})) for s in stored] == \
        [(c.seq, c.comm_type, c.payload, c.extra) for c in expected]
    assert resume is None
    # the telemetry record is stored once, as its line (the telemetry query reads it from there)
    assert comm_chunks.every_record(writer.conn)[0][3].count(b"21.5") == 1
    assert [i["payload"] for i in queries.telemetry_messages(writer.conn, "d1", None, None, 5)] == \
        [records[0].data["payload"]]
    assert queries.communications(writer.conn, start_us=None, end_us=None, device="d2", comm_type=None, limit=10,
                                  mapper=communications) == ([], None)


def test_communications_come_back_in_time_order_when_the_clock_stepped_back(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db", comm_mapper, {"device.telemetry"})
    writer.apply([telemetry(1, 10, "d1", {}), telemetry(2, 50, "d1", {})])
    writer.apply([telemetry(3, 20, "d1", {}), telemetry(4, 30, "d1", {})])  # the box's clock went back
    writer.apply([telemetry(5, 60, "d1", {})])
    assert [r[1] for r in comm_chunks.every_record(writer.conn)] == [1, 3, 4, 2, 5]
    items, _ = queries.communications(writer.conn, start_us=None, end_us=None, device="d1", comm_type=None,
                                      limit=10, mapper=comm_mapper)
    assert [i["seq"] for i in items] == [1, 3, 4, 2, 5]
    start = int((T0 + timedelta(seconds=25)).timestamp() * 1_000_000)
    dropped = comm_chunks.drop_before(writer.conn, writer.compressor, start)
    assert dropped == 2 and [r[1] for r in comm_chunks.every_record(writer.conn)] == [4, 2, 5]


def test_a_deleted_device_history_is_gone_at_once_and_its_id_starts_afresh(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    writer.apply([telemetry(1, 0, "d1", {"t": 1}), telemetry(2, 1, "d2", {"t": 2})])
    writer.apply([telemetry(3, 2, "d1", {"t": 3}), Record(4, ts(3), "device.deleted", {"device_id": "d1"}),
                  telemetry(5, 4, "d1", {"t": 5})])
    conn = writer.conn
    assert [i["payload"]["t"] for i in queries.telemetry_messages(conn, "d1", None, None, 10)] == [5]
    assert [i["payload"]["t"] for i in queries.telemetry_messages(conn, "d2", None, None, 10)] == [2]
    series = queries.telemetry_series(conn, "d1", "t", 0, 1 << 60, 3_600_000_000)
    assert [(p["count"], p["min"]) for p in series] == [(1, 5)]
    # the old number is retired, never given again; its rows were regrouped under it before it was
    assert conn.execute("SELECT id, retired_seq FROM device_ids ORDER BY n").fetchall() == \
        [("d1", 4), ("d2", None), ("d1", None)]
    assert conn.execute("SELECT device, count FROM telemetry").fetchall() == [(1, 2), (2, 1)]


def test_values_of_an_hour_that_has_its_figures_are_folded_in_when_the_clock_stepped_back(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    writer.apply([telemetry(1, 0, "d1", {"t": 10}), telemetry(2, 3600, "d1", {"t": 20})])  # hour 0 is over
    writer.apply([telemetry(3, 7300, "d1", {"t": 30})])
    assert writer.meta("hourly_until") > int(T0.timestamp()) // 3600  # hour 0 has its figures
    writer.apply([telemetry(4, 60, "d1", {"t": 4})])  # back in hour 0
    writer.regroup_all()
    start = int(T0.timestamp() * 1_000_000)
    hours = queries.telemetry_series(writer.conn, "d1", "t", start, start + 3 * 3_600_000_000, 3_600_000_000)
    assert [(p["min"], p["max"], p["count"]) for p in hours] == [(4, 10, 2), (20, 20, 1), (30, 30, 1)]
    assert [i["payload"]["t"] for i in queries.telemetry_messages(writer.conn, "d1", None, None, 10)] == \
        [10, 4, 20, 30]


def test_telemetry_an_earlier_version_kept_is_imported_where_the_journal_no_longer_has_it(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    kept = {"d1": [{"seq": s, "ts": ts(s), "payload": {"t": s}, **({"device_ts": "x"} if s == 2 else {})}
                   for s in (2, 3, 8, 9)]}
    writer.conn.execute("BEGIN")
    assert writer.import_telemetry(kept, journal_from=8) == 2
    writer.conn.execute("COMMIT")
    writer.apply([telemetry(8, 8, "d1", {"t": 8}), telemetry(9, 9, "d1", {"t": 9})])  # from the journal
    items = queries.telemetry_messages(writer.conn, "d1", None, None, 10)
    assert [(i["seq"], i.get("device_ts")) for i in items] == [(2, "x"), (3, None), (8, None), (9, None)]


LAYOUT_4 = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS device_ids (n INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS telemetry_recent (
    seq INTEGER PRIMARY KEY, device INTEGER NOT NULL, ts INTEGER NOT NULL, device_ts TEXT, payload TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (
    device INTEGER NOT NULL, ts INTEGER NOT NULL, seq INTEGER NOT NULL, device_ts TEXT, payload TEXT NOT NULL,
    PRIMARY KEY (device, ts, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS telemetry_hourly (
    device INTEGER NOT NULL, key TEXT NOT NULL, hour INTEGER NOT NULL,
    low REAL NOT NULL, high REAL NOT NULL, total REAL NOT NULL, count INTEGER NOT NULL,
    PRIMARY KEY (device, key, hour)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS punches (
    id INTEGER PRIMARY KEY, seq INTEGER NOT NULL, received TEXT NOT NULL, source TEXT NOT NULL,
    connector TEXT, enrollid INTEGER NOT NULL, time TEXT NOT NULL, key_time TEXT NOT NULL, tz TEXT NOT NULL,
    utc TEXT NOT NULL, utc_ts REAL NOT NULL, mode INTEGER, inout INTEGER NOT NULL, event INTEGER NOT NULL,
    temp, verifymode, image_chars INTEGER, skew INTEGER NOT NULL, held INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS punches_key ON punches (source, enrollid, key_time, inout, event);
CREATE INDEX IF NOT EXISTS punches_source ON punches (source, id);
CREATE INDEX IF NOT EXISTS punches_enrollid ON punches (enrollid, id);
CREATE INDEX IF NOT EXISTS punches_held ON punches (source) WHERE held = 1;
CREATE TABLE IF NOT EXISTS communications (
    ts INTEGER NOT NULL, seq INTEGER NOT NULL, last_ts INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
    PRIMARY KEY (ts, seq)) WITHOUT ROWID;
"""


def test_a_store_of_layout_4_is_brought_forward_with_everything_it_held(tmp_path):
    path = tmp_path / "h.db"
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(LAYOUT_4 + "PRAGMA user_version = 4;")
    hour = int(T0.timestamp()) // 3600
    start = int(T0.timestamp() * 1_000_000)
    old.executescript(f"""
        INSERT INTO meta VALUES ('position', 40), ('hourly_until', {hour + 1}), ('next_punch_id', 2);
        INSERT INTO device_ids VALUES (1, 'd1'), (2, 'd2');
        INSERT INTO telemetry VALUES (1, {start}, 3, NULL, '{{"t":1}}'), (1, {start + 60_000_000}, 5, 'x', '{{"t":2}}');
        INSERT INTO telemetry_recent VALUES (30, 2, {start + 3_700_000_000}, NULL, '{{"t":7}}');
        INSERT INTO telemetry_hourly VALUES (1, 't', {hour}, 1, 2, 3, 2);
    """)
    old.execute("INSERT INTO punches VALUES (1, 2, ?, 'A', 'http', 1, '2026-06-01 08:00:00', '2026-06-01 08:00:00', "
                "'UTC', '2026-06-01T08:00:00Z', 0, 1, 0, 0, NULL, NULL, NULL, 0, 0)", (ts(0),))
    old.close()
    writer = HistoryWriter(path)  # a punch the journal may no longer hold: it must stay
    conn = writer.conn
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 5 and writer.position == 40
    assert [(i["seq"], i["payload"], i.get("device_ts")) for i in queries.telemetry_messages(conn, "d1", None, None, 9)] \
        == [(3, {"t": 1}, None), (5, {"t": 2}, "x")]
    assert [i["payload"] for i in queries.telemetry_messages(conn, "d2", None, None, 9)] == [{"t": 7}]
    hours = queries.telemetry_series(conn, "d1", "t", start, start + 3_600_000_000, 3_600_000_000)
    assert [(p["min"], p["max"], p["count"]) for p in hours] == [(1, 2, 2)]
    writer.apply([telemetry(41, 3800, "d1", {"t": 9}), Record(42, ts(3801), "device.deleted", {"device_id": "d2"}),
                  telemetry(43, 3802, "d2", {"t": 8})])
    assert [i["seq"] for i in queries.telemetry_messages(conn, "d1", None, None, 9)] == [3, 5, 41]
    assert [i["seq"] for i in queries.telemetry_messages(conn, "d2", None, None, 9)] == [43]
    assert len(list(queries.select_punches(conn))) == 1
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@given(entries=st.lists(st.tuples(st.integers(-(1 << 60), 1 << 60), st.integers(1, 1 << 40),
                                  st.one_of(st.none(), st.text(max_size=10)), _payloads), max_size=30))
def test_a_telemetry_row_gives_back_the_entries_it_was_made_of(entries):
    import zstandard

    blob = telemetry_windows.encode(zstandard.ZstdCompressor(), entries)
    assert telemetry_windows.decode(blob) == [tuple(e) for e in entries]


def test_an_hours_total_adds_its_values_in_seq_order_across_windows_and_restarts(tmp_path):
    records = [telemetry(1, 0, "d1", {"t": 0.1}), telemetry(2, 1, "d1", {"t": 0.2}), telemetry(3, 2, "d1", {"t": 0.3}),
               telemetry(4, 3600, "d1", {"t": 1})]  # hour 0 is over
    live = HistoryWriter(tmp_path / "live.db")
    with patch.object(telemetry_windows, "REGROUP_RECORDS", 1):  # a window per message
        for record in records[:3]:
            live.apply([record])
        assert live.conn.execute("SELECT count(*) FROM telemetry_windows").fetchone()[0] == 3
        live.close()
        live = HistoryWriter(tmp_path / "live.db")  # hour 0's figures so far come back from three windows
        live.apply(records[3:])
    rebuilt = HistoryWriter(tmp_path / "rebuilt.db")
    rebuilt.apply(records)
    rebuilt.regroup_all()
    totals = [w.conn.execute("SELECT total FROM telemetry_hourly").fetchall() for w in (live, rebuilt)]
    assert totals[0] == totals[1] == [((0.1 + 0.2) + 0.3,)] != [((0.3 + 0.2) + 0.1,)]


def test_a_device_id_that_json_escapes_is_found_before_and_after_regrouping(tmp_path):
    writer = HistoryWriter(tmp_path / "h.db")
    odd = 'ü "q" \\ /\t'
    writer.apply([telemetry(1, 0, odd, {"t": 1}), telemetry(2, 1, "plain", {"t": 2})])
    assert [i["seq"] for i in queries.telemetry_messages(writer.conn, odd, None, None, 9)] == [1]  # not regrouped yet
    writer.regroup_all()
    writer.apply([telemetry(3, 2, odd, {"t": 3})])
    assert [i["seq"] for i in queries.telemetry_messages(writer.conn, odd, None, None, 9)] == [1, 3]
