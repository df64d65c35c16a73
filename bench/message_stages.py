"""What one device telemetry message costs, stage by stage, in microseconds (in process, no sockets).

    .venv/bin/python bench/message_stages.py [--messages 20000]

Each stage runs over the same messages in turn, timed by the CPU time of the
thread (the box is shared: wall time would count other processes too): decode+validate (the
JSON dialect's codec), rate limit (the per-device token bucket), journal encode (the JSON line),
apply (the state fold), ack (encoding the reply), ResIOT render (the /monitor/communications frame's
text, made once per record by the stream's broadcaster, only while a monitor listens), monitor feed
(the broadcaster's whole work per record for one connected monitor: render, select, the frame's
bytes appended to the feed its sessions read), history writer (the store's rows for the record, in
batches of --batch as its worker thread writes them, commit included), fan-out (the hub offering
each durable record to one subscriber) and fan-out to a monitored daemon's three subscriptions (the
communications and actions broadcasters and the history store, which takes journal lines too), in
durable batches of --fan-batch records, each subscription's queue read empty after each batch. Socket I/O, the fsync and task switches are
not in these figures: bench/ingest_ws.py measures the whole path against the raw stack.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


async def measure(count: int, batch: int, fan_batch: int) -> list[tuple[str, float]]:
    from gatewayd.history.writer import HistoryWriter
    from gatewayd import config, ops
    from gatewayd.connectors.devices import json_codec
    from gatewayd.connectors.devices.messages import Ack
    from gatewayd.gateway import open_core
    from gatewayd.journal.record import Record, encode_line, utc_now_iso

    with tempfile.TemporaryDirectory(prefix="gatewayd-bench-stages-") as tmp:
        settings = config.from_mapping({"server": {"state_dir": tmp},
                                        "devices": {"rate_per_second": 1e6, "rate_burst": 1_000_000}}, "<bench>")
        async with open_core(settings, online=False) as core:
            created = await ops.call(core, "device.create", {"name": "stages"})
            device = core.state.devices.devices[created["id"]]
            frames = [json.dumps({"type": "telemetry", "id": f"m{i}", "ts": "2026-12-02T10:00:00Z",
                                  "payload": {"temperature": 21.5 + i % 7, "humidity": 40 + i % 13, "battery": 3.61}})
                      for i in range(count)]
            presence = core.service("presence")
            max_chars = settings.devices.max_frame_bytes
            zone = core.service("monitor").zone
            stream = core.service("monitor").kinds["communications"]
            stages: list[tuple[str, float]] = []

            def timed(name: str, fn, items):
                gc.collect()  # what earlier stages left for the collector is not this stage's cost
                began = time.thread_time_ns()
                out = [fn(item) for item in items]
                stages.append((name, (time.thread_time_ns() - began) / 1e3 / len(items)))
                return out

            messages = timed("decode+validate", lambda f: json_codec.decode(f, max_chars=max_chars), frames)
            timed("rate limit", lambda m: presence.allow_message(device["id"]), messages)
            seq0 = core.hub.next_seq

            def record_of(indexed):
                i, msg = indexed
                data = {"device_id": device["id"], "name": device["name"], "connector": "ws", "payload": msg.payload,
                        "device_ts": msg.ts, "msg_id": msg.msg_id, "dialect": "json"}
                return Record(seq0 + i, utc_now_iso(), "device.telemetry", data)

            records = [record_of(pair) for pair in enumerate(messages)]
            timed("journal encode", encode_line, records)
            timed("apply", core.state.apply, records)
            timed("ack", lambda m: json_codec.encode(Ack(m.msg_id)), messages)
            timed("ResIOT render", lambda r: stream.select(None, stream.render(r, zone)), records)
            broadcast = core.service("monitor").broadcasts["communications"]
            listening = _Listening()  # a monitor that keeps up (its writer is not run)
            listening.feed, _ = broadcast.join(listening)
            timed("monitor feed (1 monitor)", broadcast._offer, records)
            writer = HistoryWriter(Path(tmp) / "bench-history.db", core.comms.communications,
                                   core.comms.comm_mappers.keys())
            lines = [encode_line(r) for r in records]
            batches = [(records[i:i + batch], lines[i:i + batch]) for i in range(0, len(records), batch)]
            timed("history writer", lambda b: writer.apply(b[0], lines=b[1]), batches)
            stages[-1] = (stages[-1][0], stages[-1][1] * len(batches) / len(records))
            writer.close()
            with core.hub.subscribe(count + 10, stream.accepts) as _subscription:
                timed("fan-out (1 subscriber)", lambda r: core.hub._fan_out((r,)), records)
            actions = core.service("monitor").kinds["actions"]
            with core.hub.subscribe(count + 10, stream.accepts) as comms, \
                    core.hub.subscribe(count + 10, actions.accepts) as acts, \
                    core.hub.subscribe(count + 10, lambda r: r.type in core.comms.comm_mappers, lines=True) as store:
                queues = [comms.receive, acts.receive, store.receive]

                def fan_out(batch_and_lines):
                    core.hub._fan_out(*batch_and_lines)
                    for queue in queues:
                        while True:
                            try:
                                queue.receive_nowait()
                            except trio.WouldBlock:
                                break

                durable = [(records[i:i + fan_batch], lines[i:i + fan_batch])
                           for i in range(0, len(records), fan_batch)]
                timed("fan-out (3 subscribers)", fan_out, durable)
                stages[-1] = (stages[-1][0], stages[-1][1] * len(durable) / len(records))
            return stages


class _Listening:
    """A monitoring session that has read everything, as far as its feed can tell."""

    filter = None
    feed = None

    @property
    def cursor(self) -> int:
        return self.feed.end

    def drop(self) -> None:
        raise AssertionError("dropped")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=500, help="records per history store commit")
    parser.add_argument("--fan-batch", type=int, default=100, help="records per durable batch (group commit)")
    args = parser.parse_args()
    stages = trio.run(measure, args.messages, args.batch, args.fan_batch)
    print(f"{args.messages} telemetry messages, one device, in process; microseconds per message:")
    for name, us in stages:
        print(f"  {name:24s} {us:8.2f} us")
    print(f"  {'sum of stages':24s} {sum(us for _, us in stages):8.2f} us")


if __name__ == "__main__":
    main()
