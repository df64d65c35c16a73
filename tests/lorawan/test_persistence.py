"""Sessions, counters, nonces and queues survive a restart and a kill -9 (they live in the journal)."""

from __future__ import annotations

import json

import httpx
import trio

from gatewayd.connectors.lorawan import frames as lorawan

from .helpers import (ABP_EUI, OTAA_APP_EUI, OTAA_EUI, OTAA_KEY, UdpGateway, abp_device, add_abp, add_otaa,
                      dropped, free_udp_port, journal_bytes, open_monitor, otaa_device)
from tests.conftest import DaemonProcess, run_cli, wait_for


async def test_restart_in_the_middle_keeps_sessions_and_counters(daemon):
    core = daemon.core
    await add_abp(core)
    await add_otaa(core)
    abp, otaa = abp_device(), otaa_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await gw.push(otaa.join_request(77))
        otaa.decode_downlink((await gw.pull_resp()).txpk.data)
        for n in range(3):
            await gw.push(abp.uplink(1, bytes([n])), otaa.uplink(2, bytes([n])))
        await monitor.expect(lambda f: len(monitor.all("comm_rx")) == 6)
        await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 9, "Payload": "aa", "Confirm": True,
                          "Reference": "before"})
        await monitor.tx({"function": "TX", "DevEUI": ABP_EUI, "Port": 9, "Payload": "bb", "Reference": "queued"})
        await gw.push(abp.uplink(1, b"x"))
        down = abp.decode_downlink((await gw.pull_resp()).txpk.data)
        assert down["payload"] == b"\xaa" and down["f_cnt"] == 0 and down["f_pending"]

    await daemon.restart()
    core = daemon.core
    core.service("lorawan").network.dedup.hold = 0.0
    session = core.state.lorawan.device(OTAA_EUI)
    assert session["dev_addr"] == lorawan.dev_addr_hex(otaa.dev_addr) and session["fcnt_up"] == 3
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await gw.push(abp.uplink(1, b"old", fcnt=1))  # replay of a counter used before the restart
        await wait_for(lambda: dropped(core, "fcnt_replay") == 1)
        await gw.push(abp.uplink(1, b"ack", ack=True), otaa.uplink(2, b"otaa after"))
        confirmed = await monitor.comm("comm_txconfirm")
        rx = await monitor.comm("comm_rx", DevEui=OTAA_EUI)
        down = abp.decode_downlink((await gw.pull_resp()).txpk.data)
        await gw.push(otaa.join_request(77))  # the DevNonce is remembered too
        await monitor.expect(lambda f: f["CommType"] == "comm_join" and f["Extra"]["accepted"] == "false")
    assert confirmed["Reference"] == "before"
    assert rx["Payload"] == b"otaa after".hex() and rx["Extra"]["seqno"] == "3"
    assert down["payload"] == b"\xbb" and down["f_cnt"] == 1 and not down["f_pending"]


async def _metric(client: httpx.AsyncClient, line_start: str) -> float:
    for line in (await client.get("/metrics")).text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_kill_9_after_a_join_keeps_the_session(tmp_path):
    state_dir = tmp_path / "state"
    udp_port = free_udp_port()
    added = await trio.to_thread.run_sync(
        run_cli, "device", "add", "field-sensor", "--lorawan", "--dev-eui", OTAA_EUI.upper(), "--app-eui",
        OTAA_APP_EUI, "--app-key", OTAA_KEY, "--state-dir", str(state_dir), "--json")
    assert added.returncode == 0, added.stderr
    assert OTAA_KEY not in added.stdout
    daemon = DaemonProcess(state_dir, ["--udp-port", str(udp_port)])
    device = otaa_device()
    try:
        await trio.to_thread.run_sync(daemon.start)
        async with UdpGateway(udp_port) as gw:
            await gw.pull()
            await gw.push(device.join_request(5))
            device.decode_downlink((await gw.pull_resp()).txpk.data)  # sent only once the join is durable
        await trio.to_thread.run_sync(daemon.kill)

        await trio.to_thread.run_sync(daemon.start)
        async with UdpGateway(udp_port) as gw, httpx.AsyncClient(base_url=f"http://127.0.0.1:{daemon.port}") as client:
            await gw.push(device.uplink(3, b"survived"))
            with trio.fail_after(5):
                while await _metric(client, 'gatewayd_lorawan_uplinks_total{status="new"}') < 1:
                    await trio.sleep(0.05)
    finally:
        await trio.to_thread.run_sync(daemon.stop)
    shown = await trio.to_thread.run_sync(run_cli, "lorawan", "device", OTAA_EUI, "--state-dir", str(state_dir),
                                          "--json")
    session = json.loads(shown.stdout)
    assert session["dev_addr"] == lorawan.dev_addr_hex(device.dev_addr) and session["fcnt_up"] == 1
    assert "app_key" not in session and "nwk_s_key" not in session

    class Journal:
        journal_dir = state_dir / "journal"
    stored = journal_bytes(Journal)
    for key in (device.app_key, device.nwk_s_key, device.app_s_key):
        assert key.hex().encode() not in stored
    assert (state_dir / "secret.key").stat().st_mode & 0o777 == 0o600
