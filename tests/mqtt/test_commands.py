"""Commands down: to a WebSocket device, as a LoRaWAN downlink, to a terminal; refusals come back."""

import json

from tests.conftest import wait_for
from tests.devices.helpers import create_device, open_websocket_url, receive_json, register, send_json, ws_url
from tests.lorawan.helpers import ABP_EUI, GW1, UdpGateway, abp_device, add_abp

from .conftest import PREFIX


def events(subscriber, topic: str, **fields) -> list[dict]:
    return [b for t, b in subscriber.snapshot() if t == topic and all(b.get(k) == v for k, v in fields.items())]


async def test_a_command_reaches_a_websocket_device(daemon, subscriber):
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    device = await create_device(daemon)
    base = f"{PREFIX}/device/{device['id']}"
    async with open_websocket_url(ws_url(daemon)) as ws:
        await register(ws, device)
        subscriber.publish(f"{base}/command/down", json.dumps(
            {"command": "reboot", "payload": {"delay": 5}, "expires_in": 600, "reference": "job-1"}))
        command = await receive_json(ws, timeout=10)
        assert (command["type"], command["command"], command["payload"]) == ("command", "reboot", {"delay": 5})
        await send_json(ws, {"type": "command_result", "id": command["id"], "ok": True, "result": {"rebooted": 1}})
        done = await subscriber.wait_for(lambda _: events(subscriber, f"{base}/event/command", state="acknowledged"))
    assert done[0]["command_id"] == command["id"] and done[0]["result"] == {"rebooted": 1}
    states = [b["state"] for b in events(subscriber, f"{base}/event/command")]
    assert states == ["queued", "sent", "acknowledged"]
    [queued] = events(subscriber, f"{base}/event/command", state="queued")
    assert queued["source"] == "mqtt" and queued["reference"] == "job-1"
    await subscriber.wait_for(lambda _: events(subscriber, f"{base}/event/tx"))
    assert daemon.core.service("mqtt").commands["accepted"] == 1


async def test_bad_commands_come_back_as_errors_and_nothing_else_happens(daemon, subscriber):
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    device = await create_device(daemon)
    base = f"{PREFIX}/device/{device['id']}"
    for payload, error in [(b"not json", "not JSON"), (b"[1]", "JSON object"),
                           (json.dumps({"command": "x", "expire_in": 5}), "unknown key 'expire_in'"),
                           (json.dumps({"payload": {}}), "command is required"),
                           (json.dumps({"command": "x", "expires_in": -1}), "expires_in")]:
        subscriber.publish(f"{base}/command/down", payload)
        await subscriber.wait_for(lambda _: [b for b in events(subscriber, f"{base}/event/command", state="rejected")
                                             if error in b["error"]])
    subscriber.publish(f"{PREFIX}/device/no-such-device/command/down", json.dumps({"command": "x"}))
    await subscriber.wait_for(lambda _: events(subscriber, f"{PREFIX}/device/no-such-device/event/command",
                                               state="rejected", error="no device 'no-such-device'"))
    assert daemon.core.state.commands.for_device(device["id"]) == []
    assert daemon.core.service("mqtt").commands["refused"] == 6


async def test_a_lorawan_downlink_goes_out_after_the_next_uplink(daemon, subscriber):
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    created = await add_abp(daemon.core)
    base = f"{PREFIX}/device/{created['id']}"
    device = abp_device()
    async with UdpGateway(daemon.udp_port) as gw:
        await gw.pull()
        subscriber.publish(f"{base}/command/down", json.dumps({"port": 7, "payload": "cafe", "reference": "dl-1"}))
        await subscriber.wait_for(lambda _: events(subscriber, f"{base}/event/command", state="queued"))
        await gw.push(device.uplink(1, b"up"))
        resp = await gw.pull_resp()
        down = device.decode_downlink(resp.txpk.data)
        assert (down["f_port"], down["payload"]) == (7, b"\xca\xfe")
        await gw.tx_ack(resp.token)
        [ack] = await subscriber.wait_for(lambda _: events(subscriber, f"{base}/event/txack"))
    assert ack["ok"] is True and ack["gateway_eui"] == GW1 and ack["reference"] == "dl-1"
    [up] = events(subscriber, f"{base}/event/up")
    assert (up["dev_eui"], up["data"], up["fport"], up["fcnt"]) == (ABP_EUI, b"up".hex(), 1, 0)
    [tx] = events(subscriber, f"{base}/event/tx")
    assert tx["data"] == "cafe" and tx["comm"]["CommType"] == "comm_tx" and tx["comm"]["Reference"] == "dl-1"
    assert events(subscriber, f"{PREFIX}/gateway/{GW1}/event/rx")
    await subscriber.wait_for(lambda _: events(subscriber, f"{base}/event/command", state="transmitted"))
    states = [b for b in events(subscriber, f"{base}/event/command")]
    assert [b["state"] for b in states] == ["queued", "sent", "transmitted"]  # on air: comm_txsendconfirm
    assert states[-1]["comm"]["CommType"] == "comm_txsendconfirm" and states[-1]["comm"]["Reference"] == "dl-1"


async def test_lorawan_commands_by_eui_and_as_resiot_tx_objects(daemon, subscriber):
    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    created = await add_abp(daemon.core)
    subscriber.publish(f"{PREFIX}/device/{ABP_EUI}/command/down", json.dumps({"port": 3, "payload": "01"}))
    subscriber.publish(f"{PREFIX}/device/{created['id']}/command/down", json.dumps(
        {"function": "TX", "Port": 4, "Payload": "02", "Reference": "tx-obj"}))
    subscriber.publish(f"{PREFIX}/device/{created['id']}/command/down", json.dumps({"port": 300, "payload": "01"}))
    session = daemon.core.state.lorawan.device(ABP_EUI)
    await wait_for(lambda: len(session["queue"]) == 2, timeout=10)
    assert [(c["port"], c["payload"]) for c in session["queue"]] == [(3, "01"), (4, "02")]
    await subscriber.wait_for(lambda _: events(subscriber, f"{PREFIX}/device/{created['id']}/event/command",
                                               state="rejected"))


async def test_a_terminal_command_is_queued_for_an_accepted_terminal(daemon, subscriber):
    from gatewayd import ops

    await wait_for(lambda: daemon.core.service("mqtt").state == "connected", timeout=10)
    await ops.call(daemon.core, "terminal.add", {"sn": "ZK0001", "name": "Front door"})
    subscriber.publish(f"{PREFIX}/terminal/ZK0001/command/down",
                       json.dumps({"command": "opendoor", "params": {"doornum": 1}}))
    [queued] = await subscriber.wait_for(
        lambda _: events(subscriber, f"{PREFIX}/terminal/ZK0001/event/command", state="queued"))
    assert queued["command"] == "opendoor" and queued["params"] == {"doornum": 1} and queued["name"] == "Front door"
    subscriber.publish(f"{PREFIX}/terminal/ZK0001/command/down", json.dumps({"command": "opendoor", "args": {}}))
    await subscriber.wait_for(lambda _: events(subscriber, f"{PREFIX}/terminal/ZK0001/event/command",
                                               state="rejected"))
