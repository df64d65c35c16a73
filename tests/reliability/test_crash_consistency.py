"""Power cuts under load: a real gatewayd process killed with SIGKILL at random moments while
WebSocket devices, HTTP and WebSocket terminals, TX requests and a LoRa packet forwarder keep
talking to it. After every kill, before the next start, the journal is checked against what the
clients were told:

- every acknowledged telemetry message is there exactly once;
- every acknowledged punch is stored exactly once; every TX answered Success is a queued command;
- commands are delivered at least once until the device answers, and at most `max_attempts` times:
  every delivery a device saw has its `command.sent` record, a repeat carries the same id, name and
  payload, no command has more deliveries than its limit, none is sent after it was acknowledged,
  failed or expired, a command acknowledged by the device is never delivered again once that is
  durable, and at the end every TX answered Success is acknowledged or failed after its last
  attempt; `gatewayd journal verify` is clean;
- LoRaWAN counters never go back: the next uplink FCnt is past every uplink fanned out, no downlink
  FCnt is ever used twice, and every DevNonce answered with a join-accept stays used.

GATEWAYD_KILLS (default 30) sets the number of kills; GATEWAYD_SEED the random seed.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter

import httpx
import pytest
import trio

from gatewayd.journal.reader import JournalReader
from gatewayd.gateway import load_state
from trio_websocket import open_websocket_url

from tests.conftest import run_cli
from tests.lorasim import SimDevice
from tests.lorawan.helpers import free_udp_port
from tests.reliability.crash_load import (Endpoint, Ledger, Spawner, command_checker, http_terminal, lora_gateway,
                                          monitor_reader, tx_sender, ws_device, ws_terminal)
from tests.reliability.figures import count

KILLS = int(os.environ.get("GATEWAYD_KILLS", "30"))
SEED = int(os.environ.get("GATEWAYD_SEED", str(random.randrange(1 << 30))))

ABP = {"dev_eui": "0004a30b001c0c01", "dev_addr": "26011c01", "nwk_s_key": "2b7e151628aed2a6abf7158809cf4f3c",
       "app_s_key": "3c4fcf098815f7aba6d2ae2816157e2b"}
OTAA = {"dev_eui": "70b3d57ed0000c01", "app_eui": "70b3d57ed0000000", "app_key": "000102030405060708090a0b0c0d0e0f"}

CONFIG = """
[terminals]
auto_accept = true
[journal]
segment_bytes = 65536
snapshot_every = 400
[server]
udp_host = "127.0.0.1"
graceful_timeout = 2.0
"""


class Problems(list):
    def check(self, ok: bool, message: str) -> None:
        if not ok:
            self.append(message)


def check_journal(journal, ledger: Ledger, kill: int, problems: Problems, generation: int) -> int:
    """Compare the journal a restart will see with what clients were told. Returns records checked."""
    where = f"after kill {kill}"
    report = JournalReader(journal).verify()
    problems.check(report.ok, f"{where}: journal verify: {report.problems}")
    records = list(JournalReader(journal).records())
    state, _ = load_state(journal, cut_tail=False)

    telemetry = Counter(r.data.get("msg_id") for r in records if r.type == "device.telemetry")
    lost = [i for i in ledger.ws_acked if telemetry[i] != 1]
    problems.check(not lost, f"{where}: acknowledged telemetry not there exactly once: "
                             f"{[(i, telemetry[i]) for i in lost[:5]]}")
    # The history store is a projection of these records: each acknowledged punch in exactly one record.
    stored = Counter((r.data["source"], p["enrollid"], p["time"], p["inout"], p["event"])
                     for r in records if r.type == "attendance.punches" for p in r.data["punches"])
    missing = [k for k in ledger.punches_acked if stored[k] != 1]
    problems.check(not missing, f"{where}: acknowledged punches not stored exactly once: {missing[:5]}")

    queued = Counter(r.data.get("reference") for r in records if r.type == "command.queued")
    absent = [ref for ref in ledger.tx_ok if queued[ref] != 1]
    problems.check(not absent, f"{where}: TX answered Success but not queued exactly once: {absent[:5]}")
    acknowledged_at: dict[str, int] = {}
    finished_at: dict[str, tuple[str, int]] = {}
    attempts, limits = attempts_and_limits(records)
    for record in records:
        command_id = record.data.get("command_id")
        if record.type in ("command.acknowledged", "command.failed", "command.expired"):
            finished_at.setdefault(command_id, (record.type, record.seq))
            if record.type == "command.acknowledged":
                acknowledged_at.setdefault(command_id, record.seq)
        elif record.type == "command.sent" and command_id in finished_at:
            problems.append(f"{where}: command {command_id} sent again (seq {record.seq}) after "
                            f"{finished_at[command_id][0]} (seq {finished_at[command_id][1]})")
    over = [(c, n, limits[c]) for c, n in attempts.items() if n > limits[c]]
    problems.check(not over, f"{where}: commands sent more often than their max_attempts: {over[:5]}")
    # Each attempt is durable before its frame goes out, so a device never sees more deliveries
    # of a command than the journal holds command.sent records for it.
    uncounted = [(c, len(g), attempts[c]) for c, g in ledger.deliveries.items() if len(g) > attempts[c]]
    problems.check(not uncounted, f"{where}: deliveries a device saw without their command.sent record "
                                  f"(command, seen, journaled): {uncounted[:5]}")
    problems.check(not ledger.changed_repeats, f"{where}: commands delivered again with another name or payload "
                                               f"under the same id: {ledger.changed_repeats[:5]}")
    # A device may see a command again until its acknowledgement is durable, never after: a command
    # acknowledged in this journal was durable before the incarnation that just died was killed.
    for command_id in acknowledged_at:
        ledger.durable_ack.setdefault(command_id, generation)
    for command_id, durable_in in ledger.durable_ack.items():
        later = [g for g in ledger.deliveries.get(command_id, ()) if g > durable_in]
        problems.check(not later, f"{where}: command {command_id} delivered again after its acknowledgement "
                                  "was durable")

    joins = {(r.data["dev_eui"], r.data["app_nonce"], r.data["dev_addr"]): r.data for r in records
             if r.type == "lorawan.join"}
    for eui, session in state.lorawan.devices.items():
        seen = ledger.rx_seen.get(eui)
        if seen is not None and session.get("dev_addr") == ABP["dev_addr"]:
            problems.check(session["fcnt_up"] > seen, f"{where}: {eui} expects FCnt {session['fcnt_up']} but "
                                                      f"uplink {seen} was already fanned out")
        for app_nonce, dev_addr in ledger.joins_transmitted.get(eui, ()):
            join = joins.get((eui, app_nonce, dev_addr))
            problems.check(join is not None and join["dev_nonce"] in session["dev_nonces"],
                           f"{where}: a join-accept (DevAddr {dev_addr}) went out for {eui} but its join is not "
                           "durable, or its DevNonce is not recorded as used")
    for dev_addr, fcnts in ledger.downlink_fcnts.items():
        repeats = [f for f, n in Counter(fcnts).items() if n > 1]
        problems.check(not repeats, f"{where}: downlink FCnt(s) {repeats[:5]} used twice for {dev_addr:08x}")
    return len(ledger.ws_acked) + len(ledger.punches_acked) + len(ledger.tx_ok)


async def setup_daemon(spawner: Spawner, ep: Endpoint, api_key: str) -> tuple[list[dict], dict]:
    spawner.spawn()
    info = await trio.to_thread.run_sync(spawner.wait_ready)
    ep.up(info["http_port"], info["udp_port"])
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ep.port}", timeout=10,
                                 headers={"Authorization": f"Bearer {api_key}"}) as api:
        devices = []
        for i in range(3):
            response = await api.post("/api/devices", json={"name": f"crash-{i}"})
            assert response.status_code == 201, response.text
            devices.append(response.json())
        for name, lorawan in (("abp", ABP), ("otaa", OTAA)):
            response = await api.post("/api/devices", json={"name": name, "lorawan": lorawan})
            assert response.status_code == 201, response.text
    return devices, info


@pytest.mark.slow
async def test_kill_minus_nine_under_mixed_load_loses_nothing_acknowledged(tmp_path):
    rng = random.Random(SEED)
    state = tmp_path / "state"
    logs = tmp_path / "logs"
    logs.mkdir()
    config = tmp_path / "gatewayd.toml"
    config.write_text(CONFIG)
    created = run_cli("apikey", "create", "crash", "--state-dir", str(state), "--json")
    assert created.returncode == 0, created.stderr
    api_key = json.loads(created.stdout)["key"]
    udp_port = free_udp_port()
    spawner = Spawner(state, ["--config", str(config), "--udp-port", str(udp_port)], logs)
    ep = Endpoint()
    ledger = Ledger()
    problems = Problems()
    checked = kills = 0
    try:
        devices, _ = await setup_daemon(spawner, ep, api_key)
        abp = SimDevice.abp(ABP["dev_addr"], ABP["nwk_s_key"], ABP["app_s_key"])
        async with trio.open_nursery() as load:
            for i, device in enumerate(devices):
                load.start_soon(ws_device, ep, ledger, device, random.Random(rng.random()))
            load.start_soon(http_terminal, ep, ledger, "CRASH-HTTP", random.Random(rng.random()))
            load.start_soon(ws_terminal, ep, ledger, "CRASH-WS", random.Random(rng.random()))
            load.start_soon(tx_sender, ep, ledger, api_key, devices, random.Random(rng.random()))
            load.start_soon(command_checker, ep, ledger, api_key)
            load.start_soon(lora_gateway, ep, ledger, abp, OTAA["dev_eui"], OTAA["app_eui"], OTAA["app_key"],
                            random.Random(rng.random()))
            load.start_soon(monitor_reader, ep, ledger, api_key)
            for kill in range(1, KILLS + 1):
                await trio.sleep(rng.uniform(0.1, 0.9))  # a random moment of the load: the point of the test
                spawner.kill()
                ep.down()
                kills += 1
                checked = check_journal(state / "journal", ledger, kill, problems, ep.generation)
                if problems:
                    break
                spawner.spawn()
                if rng.random() < 0.15:  # sometimes a second cut while it is still starting (replaying)
                    await trio.sleep(rng.uniform(0.0, 0.4))
                    spawner.kill()
                    kills += 1
                    check_journal(state / "journal", ledger, kill, problems, ep.generation)
                    spawner.spawn()
                info = await trio.to_thread.run_sync(spawner.wait_ready)
                output = spawner.output()
                problems.check("Traceback" not in output, f"restart after kill {kill} logged a traceback:\n{output}")
                ep.up(info["http_port"], info["udp_port"])
            load.cancel_scope.cancel()
        # A last clean run: every command answered Success reaches its device and is acknowledged.
        if not problems:
            async with trio.open_nursery() as tail:
                for device in devices:
                    tail.start_soon(ws_device, ep, ledger, device, random.Random(rng.random()))
                tail.start_soon(command_checker, ep, ledger, api_key)
                with trio.move_on_after(5):
                    while not _all_commands_done(ledger):
                        await trio.sleep(0.05)
                tail.cancel_scope.cancel()
            # Not lost: each is acknowledged, or failed after every allowed delivery died unanswered
            # (a kill between each attempt and its answer), which the bound on attempts allows.
            records = list(JournalReader(state / "journal").records())
            pending = [ref for ref in ledger.tx_ok if not _delivered(ledger, ref)]
            last = {r.data.get("reference"): r for r in records
                    if r.type.startswith("command.") and r.data.get("reference") in pending}
            attempts, limits = attempts_and_limits(records)
            lost = [ref for ref in pending if last.get(ref) is None or not _used_up(last[ref], attempts, limits)]
            problems.check(not lost, "TX commands answered Success but neither acknowledged by their device nor "
                                     "failed after their attempts: "
                                     f"{[(ref, last[ref].type if ref in last else None) for ref in lost[:5]]}")
            count("crash load: commands failed after every attempt died unanswered", len(pending) - len(lost))
            count("crash load: commands delivered again after a kill",
                  sum(1 for g in ledger.deliveries.values() if len(g) > 1))
        if spawner.proc.poll() is None:
            problems.check(spawner.terminate() == 0, f"SIGTERM exit status:\n{spawner.output()[-2000:]}")
        ep.down()
        check_journal(state / "journal", ledger, kills, problems, ep.generation)
        verify = run_cli("journal", "verify", "--state-dir", str(state))
        problems.check(verify.returncode == 0, f"gatewayd journal verify: {verify.stdout}{verify.stderr}")
    finally:
        spawner.kill()
    count("kill -9 points survived", kills)
    count("acknowledged items checked after each kill (last kill)", checked)
    for name, value in ledger.counts.items():
        if not name.startswith("telemetry of"):
            count(f"crash load: {name}", value)
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems[:10])
    assert kills >= KILLS
    assert ledger.ws_acked and ledger.punches_acked and ledger.tx_ok, "the load never got acknowledgements"
    assert ledger.rx_seen and ledger.downlink_fcnts, "the LoRaWAN load never got through"


def attempts_and_limits(records) -> tuple[Counter, dict[str, int]]:
    """command id -> command.sent records, and command id -> max_attempts from its command.queued."""
    sent = Counter(r.data["command_id"] for r in records if r.type == "command.sent")
    return sent, {r.data["command_id"]: r.data["max_attempts"] for r in records if r.type == "command.queued"}


def _used_up(last, attempts: Counter, limits: dict[str, int]) -> bool:
    command_id = last.data["command_id"]
    return last.type == "command.failed" and last.data.get("error", "").startswith("no answer") \
        and attempts[command_id] == limits[command_id]


def _delivered(ledger: Ledger, reference: str) -> bool:
    return reference in ledger.tx_delivered


def _all_commands_done(ledger: Ledger) -> bool:
    return all(_delivered(ledger, ref) for ref in ledger.tx_ok)


async def test_a_command_sent_on_a_connection_that_died_is_sent_again(daemon):
    from tests.reliability.clients import create_device, register
    from tests.reliability.rawws import RawWebSocket

    device = await create_device(daemon.base_url, daemon.auth)
    ws = await RawWebSocket.connect(daemon.port, "/ws")
    await ws.send(json.dumps({"type": "register", "device_id": device["id"], "token": device["token"]}))
    assert json.loads(await ws.receive())["type"] == "registered"
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as api:
        queued = (await api.post(f"/api/devices/{device['id']}/commands", json={"command": "reboot"})).json()
    from tests.conftest import wait_for

    await wait_for(lambda: daemon.core.state.commands.get(queued["id"])["state"] == "sent", timeout=5)
    ws.vanish()  # the device lost power before it read the command: it never got it
    commands = []
    async with open_websocket_url(daemon.ws_url + "/ws") as again:
        assert (await register(again, device))["type"] == "registered"
        with trio.move_on_after(3):
            while True:
                msg = json.loads(await again.get_message())
                if msg.get("type") == "command":
                    commands.append(msg["id"])
                    break
    assert commands == [queued["id"]], "the command the device never got was not sent again"
