"""Class A downlinks over real UDP: TX from the monitor, RX1 timing, TX_ACK, ACKs, confirmations."""

from __future__ import annotations

import httpx

from .helpers import (ABP_EUI, GW1, UdpGateway, abp_device, add_abp, open_monitor, records_of)
from tests.conftest import wait_for


def tx(reference: str, payload: str = "0102", port=5, **more) -> dict:
    return {"function": "TX", "DevEUI": ABP_EUI.upper(), "Port": port, "Payload": payload,
            "Reference": reference, **more}


async def test_tx_goes_out_in_rx1_and_tx_ack_becomes_txsendack(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        reply = await monitor.tx(tx("ref-1", "cafe", port="7"))
        assert reply == {"Result": "Success", "Details": "", "Reference": "ref-1"}
        tmst = await gw.push(device.uplink(1, b"up"), freq=867.1, datr="SF8BW125")
        resp = await gw.pull_resp()
        txpk = resp.txpk
        assert txpk.tmst == tmst + 1_000_000 and txpk.freq == 867.1 and txpk.datr == "SF8BW125"
        assert txpk.ipol and txpk.powe == 14 and not txpk.imme
        down = device.decode_downlink(txpk.data)
        assert down["f_port"] == 7 and down["payload"] == b"\xca\xfe" and down["f_cnt"] == 0
        assert not down["confirmed"] and not down["ack"] and not down["f_pending"]
        sent = await monitor.comm("comm_tx", Reference="ref-1")
        assert sent["Payload"] == "cafe" and sent["Port"] == "7" and sent["Confirmation"] is False
        assert sent["GatewayEUIs"] == [GW1] and sent["Extra"] == {"priority": 0, "window": "BOTH"}
        handed = await monitor.comm("comm_gwtx", Reference="ref-1")
        assert handed["GatewayEUIs"] == [GW1] and handed["Payload"] == "cafe" and handed["Seq"] == sent["Seq"]
        assert handed["Extra"]["window"] == "RX1" and handed["Extra"]["frequency"] == "867.1"
        assert handed["Extra"]["kind"] == "data" and handed["Extra"]["token"] == str(resp.token)
        info = await monitor.comm("comm_txinfo", Reference="ref-1")  # the gateway layer took it
        assert info["Seq"] == handed["Seq"] and info["GatewayEUIs"] == [GW1] and "Error" not in info
        assert info["Extra"]["token"] == str(resp.token) and info["Extra"]["kind"] == "data"
        order = [f["CommType"] for f in monitor.all("comm_gwtx") + monitor.all("comm_txinfo")]
        assert order == ["comm_gwtx", "comm_txinfo"]
        assert monitor.frames.index(info) == monitor.frames.index(handed) + 1

        await gw.tx_ack(resp.token)
        ack = await monitor.comm("comm_txsendack", Reference="ref-1")
        assert ack["Error"] == "" and ack["DevEui"] == ABP_EUI and ack["GatewayEUIs"] == [GW1]
        done = await monitor.comm("comm_txsendconfirm", Reference="ref-1")
        assert done["Error"] == "" and done["Extra"]["outcome"] == "sent" and done["Seq"] == ack["Seq"]

        await monitor.tx(tx("ref-2", Window="RX2"))
        await gw.push(device.uplink(1, b"up again"))
        resp = await gw.pull_resp()
        assert device.decode_downlink(resp.txpk.data)["f_cnt"] == 1  # the downlink counter moved on
        await gw.tx_ack(resp.token, "TOO_LATE")
        assert (await monitor.comm("comm_tx", Reference="ref-2"))["Extra"]["window"] == "RX2"
        late = await monitor.comm("comm_txsendack", Reference="ref-2")
        assert late["Error"] == "TOO_LATE"
        outcome = await monitor.comm("comm_txsendconfirm", Reference="ref-2")
        assert outcome["Error"] == "TOO_LATE" and outcome["Extra"]["outcome"] == "queued again"
        # Not sent by the gateway: the command is queued again and goes out after the next uplink.
        session = daemon.core.state.lorawan.device(ABP_EUI)
        assert [c["reference"] for c in session["queue"]] == ["ref-2"]
        await gw.push(device.uplink(1, b"third"))
        again = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert again["payload"] == b"\x01\x02" and again["f_cnt"] == 2
    assert session["fcnt_down"] == 3 and session["queue"] == []
    uplinks = await wait_for(lambda: len(records_of(daemon.core, "lorawan.uplink")) == 3
                             and records_of(daemon.core, "lorawan.uplink"))
    assert [r.data["downlink"]["reference"] for r in uplinks] == ["ref-1", "ref-2", "ref-2"]


async def test_confirmed_downlink_is_confirmed_by_the_devices_ack(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        assert (await monitor.tx(tx("conf-1", Confirm=True)))["Result"] == "Success"
        await gw.push(device.uplink(1, b"a"))
        down = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert down["confirmed"] and down["payload"] == b"\x01\x02"
        await gw.push(device.uplink(1, b"b", ack=True))
        confirmed = await monitor.comm("comm_txconfirm")
    assert confirmed["Reference"] == "conf-1" and confirmed["DevEui"] == ABP_EUI
    assert daemon.core.state.lorawan.device(ABP_EUI)["awaiting_ack"] is None


async def test_unacknowledged_confirmed_downlink_is_repeated_then_fails(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon, "") as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await monitor.tx(tx("conf-2", Confirm=True))
        counters = []
        for _ in range(3):
            await gw.push(device.uplink(1, b"no ack"))
            down = device.decode_downlink((await gw.pull_resp()).txpk.data)
            assert down["confirmed"] and down["payload"] == b"\x01\x02"
            counters.append(down["f_cnt"])
        await gw.push(device.uplink(1, b"still no ack"))
        await gw.no_pull_resp(0.3)
    assert counters == [0, 1, 2]
    uplinks = await wait_for(lambda: len(records_of(daemon.core, "lorawan.uplink")) == 4
                             and records_of(daemon.core, "lorawan.uplink"))
    last = uplinks[-1].data
    assert last["unacked"] == {"command_id": last["unacked"]["command_id"], "reference": "conf-2",
                               "requeued": False, "attempts": 3}
    assert daemon.core.state.lorawan.device(ABP_EUI)["queue"] == []


async def test_confirmed_uplink_gets_an_ack_and_fpending_tells_of_more(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        await gw.push(device.uplink(1, b"please ack", confirmed=True))
        down = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert down["ack"] and down["f_port"] is None and down["payload"] == b""
        assert monitor.all("comm_tx") == []  # a bare ACK is not a command

        await monitor.tx(tx("q-1", "01"))
        await monitor.tx(tx("q-2", "02"))
        await gw.push(device.uplink(1, b"x", confirmed=True))
        first = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert first["ack"] and first["f_pending"] and first["payload"] == b"\x01"
        await gw.push(device.uplink(1, b"y"))
        second = device.decode_downlink((await gw.pull_resp()).txpk.data)
        assert not second["ack"] and not second["f_pending"] and second["payload"] == b"\x02"


async def test_payload_too_long_for_the_data_rate_is_refused_with_details(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        reply = await monitor.tx(tx("big", "00" * 52))
        assert reply["Result"] == "Fail"
        assert "52 bytes" in reply["Details"] and "DR0" in reply["Details"] and "at most 51" in reply["Details"]
        await gw.push(device.uplink(1, b"x"), datr="SF7BW125")  # DR5 allows 222 bytes
        await monitor.comm("comm_rx")
        assert (await monitor.tx(tx("big-2", "00" * 52)))["Result"] == "Success"
        assert (await monitor.tx(tx("bad-port", port=224)))["Result"] == "Fail"
        unknown = await monitor.tx(dict(tx("nobody"), DevEUI="0102030405060708"))
        assert unknown["Result"] == "Fail"


async def test_no_downlink_without_a_pull_data_address(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port) as gw:
        await monitor.tx(tx("waits"))
        await gw.push(device.uplink(1, b"x"))  # no PULL_DATA yet: nowhere to send
        await monitor.comm("comm_rx")
        await gw.pull()
        await gw.no_pull_resp(0.3)
        assert len(daemon.core.state.lorawan.device(ABP_EUI)["queue"]) == 1
        await gw.push(device.uplink(1, b"y"))
        assert device.decode_downlink((await gw.pull_resp()).txpk.data)["payload"] == b"\x01\x02"


async def test_queue_over_rest(daemon):
    await add_abp(daemon.core)
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as client:
        url = f"/api/lorawan/devices/{ABP_EUI}/queue"
        r = await client.post(url, json={"port": 3, "payload": "abcd", "reference": "rest"})
        assert r.status_code == 202 and r.json()["command_id"]
        r = await client.post(url, json={"port": 3, "payload": "xyz"})
        assert r.status_code == 422 and "hexadecimal" in r.json()["message"]
        session = (await client.get(f"/api/lorawan/devices/{ABP_EUI}")).json()
        assert [c["reference"] for c in session["queue"]] == ["rest"]
        assert "nwk_s_key" not in session and "app_s_key" not in session
        r = await client.delete(url)
        assert r.json()["dropped"] == 1
        assert (await client.post(url, json={"port": 3, "payload": "ab"}, headers={"Authorization": ""})).status_code == 401
    assert daemon.core.state.lorawan.device(ABP_EUI)["queue"] == []


async def test_v1_gateway_gets_its_downlink_without_a_token(daemon):
    await add_abp(daemon.core)
    device = abp_device()
    async with open_monitor(daemon) as monitor, UdpGateway(daemon.udp_port, version=1) as gw:
        await gw.pull()
        await monitor.tx(tx("v1"))
        await gw.push(device.uplink(1, b"x"))
        resp = await gw.pull_resp()
        assert resp.version == 1 and resp.token == 0
        assert device.decode_downlink(resp.txpk.data)["payload"] == b"\x01\x02"
        await monitor.comm("comm_tx", Reference="v1")
