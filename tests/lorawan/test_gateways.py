"""Packet forwarders over real UDP: admission, keep-alives and stats, offline, junk, REST and CLI."""

from __future__ import annotations

import json

import httpx
import pytest
import trio

from gatewayd.connectors.lorawan import gwmp

from .helpers import GW1, GW2, UdpGateway, dropped, open_monitor, records_of
from tests.conftest import run_cli, wait_for


def malformed(core, reason: str) -> float:
    return core.metrics.counters.get(("gatewayd_gwmp_malformed_total", (("reason", reason),)), 0)


async def test_unknown_gateway_is_accepted_and_recorded(daemon):
    core = daemon.core
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port, GW1) as gw:
        await gw.pull()
        alive = await monitor.comm("comm_gwalive")
        await gw.stat(rxnb=7, rxok=6, lati=52.5, time="2024-05-01 10:00:00 GMT")
        stat = await monitor.expect(lambda f: f["CommType"] == "comm_gwalive" and f["Extra"].get("kind") == "stat")
    assert alive["DevEui"] == GW1 and alive["GatewayEUIs"] == [GW1] and alive["Extra"]["kind"] == "keepalive"
    assert stat["Extra"]["rxnb"] == "7" and stat["Extra"]["lati"] == "52.5"
    gateway = core.state.lorawan.gateway(GW1)
    assert gateway["source"] == "auto" and gateway["online"] and gateway["stat"]["rxok"] == 6
    await wait_for(lambda: records_of(core, "gateway.added"))
    assert records_of(core, "gateway.added")[0].data["source"] == "auto"


class TestKeepalives:
    @pytest.fixture
    def lorawan_settings(self):
        return {"keepalive_interval": 1.0, "missed_keepalives": 1}

    async def test_gateway_goes_offline_after_missed_keepalives_and_comes_back(self, daemon):
        core = daemon.core
        async with UdpGateway(daemon.udp_port, GW1) as gw:
            await gw.pull()
            await wait_for(lambda: core.state.lorawan.gateway(GW1)["online"])
            await wait_for(lambda: not core.state.lorawan.gateway(GW1)["online"], timeout=4)
            await gw.pull()
            await wait_for(lambda: core.state.lorawan.gateway(GW1)["online"])
        await wait_for(lambda: len(records_of(core, "gateway.alive")) == 2, timeout=3)
        offline = records_of(core, "gateway.offline")
        assert [r.data["eui"] for r in offline] == [GW1]
        assert [r.data["came_online"] for r in records_of(core, "gateway.alive")] == [True, True]


class TestRegisteredOnly:
    @pytest.fixture
    def lorawan_settings(self):
        return {"accept_unknown_gateways": False}

    async def test_unknown_gateway_is_refused_until_registered(self, daemon):
        core = daemon.core
        async with UdpGateway(daemon.udp_port, GW2) as gw:
            await gw.down.send(gw.sim.pull_data())
            with trio.move_on_after(0.3):
                await gw.down.recv(100)
                pytest.fail("an unknown gateway got an answer")
            assert dropped(core, "unknown_gateway") == 1 and core.state.lorawan.gateway(GW2) is None
            async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
                r = await client.post("/api/gateways", json={"eui": GW2.upper(), "name": "roof"})
                assert r.status_code == 201 and r.json()["eui"] == GW2 and r.json()["source"] == "operator"
                await gw.pull()
                await wait_for(lambda: core.state.lorawan.gateway(GW2)["online"])
                listed = (await client.get("/api/gateways")).json()["items"]
                assert [(g["eui"], g["name"], g["online"], g["downlink_ready"]) for g in listed] == \
                    [(GW2, "roof", True, True)]
                assert (await client.get(f"/api/gateways/{GW2}")).json()["addr"].startswith("127.0.0.1:")
                assert (await client.post("/api/gateways", json={"eui": "xyz"})).status_code == 422
                assert (await client.get("/api/gateways", headers={"Authorization": ""})).status_code == 401
                assert (await client.delete(f"/api/gateways/{GW2}")).status_code == 200
                assert (await client.get(f"/api/gateways/{GW2}")).status_code == 404
            await gw.down.send(gw.sim.pull_data())
            with trio.move_on_after(0.3):
                await gw.down.recv(100)
                pytest.fail("a removed gateway got an answer")


async def test_malformed_datagrams_are_counted_and_never_stop_the_listener(daemon):
    core = daemon.core
    eui = bytes.fromhex(GW1)
    rxpk_bad_b64 = {"rxpk": [{"tmst": 1, "freq": 868.1, "stat": 1, "modu": "LORA", "datr": "SF7BW125",
                              "rssi": -50, "lsnr": 5.0, "data": "!!!not base64!!!"}]}
    junk = [
        b"\x02",  # short
        b"\x07\x00\x01\x00" + eui,  # bad version
        b"\x02\x00\x01\x00" + eui + b"{not json",  # bad JSON
        b"\x02\x00\x01\x09" + eui,  # unknown identifier
        b"\x02\x00\x01\x01",  # PUSH_ACK is for servers
        b"\x02\x00\x01\x00" + eui + json.dumps([1, 2]).encode(),  # JSON, not an object
    ]
    async with UdpGateway(daemon.udp_port, GW1) as gw:
        for data in junk:
            await gw.send_raw(data)
        await gw.send_raw(b"\x02\x12\x34\x00" + eui + json.dumps(rxpk_bad_b64).encode())
        reply = gwmp.parse_server_datagram(await gw.up.recv(100))  # still acknowledged: only the entry is bad
        assert isinstance(reply, gwmp.PushAck) and reply.token == 0x1234
        await gw.pull()
    await wait_for(lambda: malformed(core, "short") == 1 and malformed(core, "bad_version") == 1
                   and malformed(core, "bad_json") == 1 and malformed(core, "bad_id") == 2
                   and malformed(core, "invalid") == 1)
    assert core.metrics.counters[("gatewayd_gwmp_bad_entries_total", ())] == 1
    async with httpx.AsyncClient(base_url=daemon.base_url) as client:
        text = (await client.get("/metrics")).text
    assert 'gatewayd_gwmp_malformed_total{reason="bad_json"} 1' in text


async def test_tx_ack_from_unknown_gateway_or_token_is_ignored(daemon):
    core = daemon.core
    async with UdpGateway(daemon.udp_port, GW1) as gw:
        await gw.pull()
        await gw.tx_ack(0xBEEF)
        stranger = gwmp.tx_ack(2, 1, GW2)
        await gw.send_raw(stranger)
        await gw.pull()
    await wait_for(lambda: core.metrics.counters.get(("gatewayd_lorawan_tx_ack_unmatched_total", ())) == 1)
    assert records_of(core, "gateway.tx_ack") == []


async def test_cli_lists_and_adds_gateways_through_the_running_daemon(daemon):
    state_dir = str(daemon.state_dir)
    added = await trio.to_thread.run_sync(run_cli, "gateway", "add", GW2, "--name", "yard", "--state-dir", state_dir)
    assert added.returncode == 0, added.stderr
    listed = await trio.to_thread.run_sync(run_cli, "gateway", "list", "--state-dir", state_dir, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(g["eui"], g["name"]) for g in json.loads(listed.stdout)] == [(GW2, "yard")]
    human = await trio.to_thread.run_sync(run_cli, "gateway", "list", "--state-dir", state_dir)
    assert GW2 in human.stdout and "yard" in human.stdout
    bad = await trio.to_thread.run_sync(run_cli, "gateway", "add", "12", "--state-dir", state_dir)
    assert bad.returncode != 0 and "16 hexadecimal digits" in bad.stderr
