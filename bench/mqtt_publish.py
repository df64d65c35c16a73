"""MQTT: QoS 1 messages/s published from the journal, beside a bare paho publisher, and backlog drain time.

Writes a journal of N telemetry/event records (default 600,000) with the MQTT cursor at 0, so the
whole journal is a backlog, starts a local Mosquitto and then:
1. the references: a bare paho-mqtt client publishes M messages (default 100,000) of the same topic
   shape and body size at QoS 1, as fast as PUBACKs allow, with the same in-flight window: once with
   paho's network thread (loop_start), once driven by its select loop (loop()) in one thread; the
   ratio is taken against the faster;
2. gatewayd (in this process, publish_rate 0) drains the backlog: follower, events, JSON, paho on
   trio, PUBACK cursor. Timed from the MQTT connection to the cursor reaching the last record.
Both run on this machine's loopback against the same broker. If the drain would pass --max-seconds
it stops there and the drain time of N records is extrapolated from the rate so far (said so).
Usage: python bench/mqtt_publish.py [--records 600000] [--reference 100000] [--max-seconds 150]
                                    [--inflight 256]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as paho  # noqa: E402

from bench.replay import rss_mib, write_journal  # noqa: E402
from gatewayd.config import from_mapping  # noqa: E402
from gatewayd.connectors.mqtt.service import CURSOR  # noqa: E402
from gatewayd.connectors.mqtt.topics import event_topic  # noqa: E402
from gatewayd.gateway import comm_tables, serve  # noqa: E402
from gatewayd.journal.follow import CursorStore  # noqa: E402
from gatewayd.journal.reader import JournalReader  # noqa: E402
from gatewayd.northbound.events import events_of  # noqa: E402
from tests.mqtt.broker import Broker  # noqa: E402

SITE = "bench"


def sample_message(journal_dir: Path) -> tuple[str, bytes]:
    """A topic and body as gatewayd publishes them for the journal's first telemetry record."""
    record = next(r for r in JournalReader(journal_dir).records() if r.type == "device.telemetry")
    [event] = events_of(record, comms=comm_tables(), site=SITE)
    return event_topic(f"gatewayd/{SITE}", event), orjson.dumps(event.body)


def bare_paho(port: int, count: int, inflight: int, topic: str, body: bytes) -> float:
    """Messages/s of a plain paho publisher: publish everything, wait for every PUBACK."""
    done = threading.Event()
    acked = 0

    def on_publish(_client, _userdata, _mid, _reason, _properties):
        nonlocal acked
        acked += 1
        if acked == count:
            done.set()

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-reference")
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        began = time.perf_counter()
        for _ in range(count):
            client.publish(topic, body, 1)
        if not done.wait(timeout=600):
            raise TimeoutError(f"the reference got {acked} of {count} PUBACKs")
        return count / (time.perf_counter() - began)
    finally:
        client.disconnect()
        client.loop_stop()


def bare_paho_single_thread(port: int, count: int, inflight: int, topic: str, body: bytes) -> float:
    """Messages/s of paho driven by its own select loop (`loop()`) in one thread: keep the window full."""
    acked = 0

    def on_publish(_client, _userdata, _mid, _reason, _properties):
        nonlocal acked
        acked += 1

    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="bench-reference-1t")
    client.max_inflight_messages_set(inflight)
    client.on_publish = on_publish
    client.connect("127.0.0.1", port)
    try:
        began = time.perf_counter()
        sent = 0
        deadline = began + 600
        while acked < count:
            while sent < count and sent - acked < inflight:
                client.publish(topic, body, 1)
                sent += 1
            client.loop(timeout=1.0)
            if time.perf_counter() > deadline:
                raise TimeoutError(f"the reference got {acked} of {count} PUBACKs")
        return count / (time.perf_counter() - began)
    finally:
        client.disconnect()


async def drain(state_dir: Path, broker_url: str, records: int, inflight: int, max_seconds: float) -> dict:
    settings = from_mapping({
        "server": {"host": "127.0.0.1", "port": 0, "udp_port": 0, "state_dir": str(state_dir)},
        "mqtt": {"url": broker_url, "site": SITE, "publish_rate": 0.0, "max_inflight": inflight,
                 "max_backlog_records": 1_000_000_000},
    }, "<bench>")
    async with trio.open_nursery() as nursery:
        core = await nursery.start(lambda task_status: serve(settings, handle_signals=False,
                                                             task_status=task_status))
        mqtt = core.service("mqtt")
        with trio.fail_after(30):
            while mqtt.state != "connected":
                await trio.sleep(0.01)
        began, start_seq, start_published = time.perf_counter(), mqtt.acked_seq, mqtt.published
        deadline = began + max_seconds
        cpu_began = time.process_time()
        while mqtt.acked_seq < records and time.perf_counter() < deadline:
            await trio.sleep(0.05)
        elapsed = time.perf_counter() - began
        result = {"seconds": elapsed, "records": mqtt.acked_seq - start_seq,
                  "messages": mqtt.published - start_published, "complete": mqtt.acked_seq >= records,
                  "cpu": time.process_time() - cpu_began, "rss": rss_mib()}
        core.stopping.set()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=600_000, help="backlog size (journal records)")
    parser.add_argument("--reference", type=int, default=100_000, help="messages for the bare paho publisher")
    parser.add_argument("--max-seconds", type=float, default=150.0, help="longest drain before extrapolating")
    parser.add_argument("--inflight", type=int, default=256, help="QoS 1 in-flight window (both publishers)")
    args = parser.parse_args()
    if not shutil.which("mosquitto") and not Path("/usr/sbin/mosquitto").exists():
        sys.exit("needs Debian's mosquitto (apt-get install mosquitto)")
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parents[1]) as tmp:
        state_dir = Path(tmp) / "state"
        size = write_journal(state_dir / "journal", args.records)
        CursorStore(state_dir / "cursors").save(CURSOR, 0)  # everything in the journal is the backlog
        topic, body = sample_message(state_dir / "journal")
        broker = Broker(Path(tmp) / "broker").start()
        try:
            threaded = bare_paho(broker.port, args.reference, args.inflight, topic, body)
            single = bare_paho_single_thread(broker.port, args.reference, args.inflight, topic, body)
            reference = max(threaded, single)
            result = trio.run(drain, state_dir, broker.url, args.records, args.inflight, args.max_seconds)
        finally:
            broker.stop()
    rate = result["messages"] / result["seconds"]
    print(f"backlog            : {args.records:,} records ({size / 1e6:,.0f} MB of journal), "
          f"message body {len(body)} bytes, QoS 1, in-flight window {args.inflight}")
    print(f"bare paho loops    : {threaded:,.0f} messages/s with loop_start (network thread), "
          f"{single:,.0f} messages/s with loop() in one thread ({args.reference:,} messages each)")
    print(f"gatewayd (journal) : {rate:,.0f} messages/s ({result['messages']:,} messages, "
          f"{result['records'] / result['seconds']:,.0f} records/s)")
    print(f"ratio              : {rate / reference:.0%} of the faster bare paho loop (target >= 50 %)")
    if result["complete"]:
        print(f"drain time         : {result['seconds']:.1f} s for {args.records:,} records (measured)")
    else:
        extrapolated = args.records / (result["records"] / result["seconds"])
        print(f"drain time         : {extrapolated:.0f} s for {args.records:,} records (EXTRAPOLATED from "
              f"{result['records']:,} records in {result['seconds']:.0f} s)")
    print(f"gatewayd CPU       : {result['cpu'] / max(1, result['messages']) * 1e6:.0f} us per message "
          f"(whole process); RSS {result['rss']:,.0f} MiB")
    print(f"for scale          : at the default publish_rate of 1,000 records/s the same backlog takes "
          f"{args.records / 1000 / 60:.0f} min by design")


if __name__ == "__main__":
    main()
