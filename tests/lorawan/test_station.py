"""LoRa Basics Station gateways end to end: a simulated station on a real WebSocket to a real daemon."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import trio
from trio_websocket import ConnectionRejected, open_websocket_url

from gatewayd import ops
from gatewayd.connectors.lorawan import frames as lorawan
from tests.conftest import wait_for
from tests.dashboard.helpers import logged_in
from tests.lorasim import SimDevice

from .helpers import GW1, UdpGateway, add_abp, add_otaa, journal_bytes, open_monitor, records_of
from .station_sim import STATION_GW, SimStation, id6

VECTORS = {v["name"]: v for v in json.loads(
    (Path(__file__).parents[1] / "vectors" / "lorawan.json").read_text())["vectors"]}
_UP = VECTORS["unconfirmed uplink, single block"]
ABP_VECTOR = {"phy": _UP["phy_payload"], "dev_addr": _UP["expect"]["dev_addr"], "nwk": _UP["nwk_s_key"],
              "app": _UP["app_s_key"], "payload": _UP["expect"]["frm_payload_plain"], "fcnt": _UP["expect"]["f_cnt"],
              "port": _UP["expect"]["f_port"]}
_JOIN = VECTORS["join-request MIC"]
_JR = bytes.fromhex(_JOIN["phy_payload"])
JOIN_VECTOR = {"phy": _JOIN["phy_payload"], "app_key": _JOIN["app_key"], "app_eui": _JR[1:9][::-1].hex(),
               "dev_eui": _JR[9:17][::-1].hex(), "dev_nonce": int.from_bytes(_JR[17:19], "little")}
TOKEN = "station-token-0123456789abcdef"


def counter(core, name: str, **labels) -> float:
    return core.metrics.counters.get((name, tuple(sorted(labels.items()))), 0)


async def test_discovery_hands_out_the_data_uri_with_port_and_path(daemon):
    station = SimStation(daemon)
    for router in (id6(STATION_GW), "B8-27-EB-FF-FE-61-2A-0D", STATION_GW, int(STATION_GW, 16)):
        reply = await station.discover(router)
        assert reply == {"router": "b827:ebff:fe61:2a0d", "muxs": "0:0:0:0",
                         "uri": f"ws://127.0.0.1:{daemon.port}/router/{STATION_GW}"}
    bad = await station.discover("not an eui")
    assert "error" in bad


async def test_version_gets_the_regions_router_config(daemon):
    async with SimStation(daemon).connect() as station:
        config = station.router_config
    assert config["region"] == "EU863" and config["hwspec"] == "sx1301/1"
    assert config["NetID"] is None and config["JoinEui"] is None
    assert config["freq_range"] == [863_000_000, 870_000_000]
    assert config["DRs"][:8] == [[12, 125, 0], [11, 125, 0], [10, 125, 0], [9, 125, 0], [8, 125, 0],
                                 [7, 125, 0], [7, 250, 0], [0, 0, 0]]
    assert config["DRs"][8:] == [[-1, 0, 0]] * 8
    conf = config["sx1301_conf"][0]
    radios = [conf["radio_0"]["freq"], conf["radio_1"]["freq"]]
    heard = sorted(radios[conf[f"chan_multiSF_{i}"]["radio"]] + conf[f"chan_multiSF_{i}"]["if"] for i in range(8))
    assert heard == [867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000, 868_100_000,
                     868_300_000, 868_500_000]
    std = conf["chan_Lora_std"]
    assert radios[std["radio"]] + std["if"] == 868_300_000 and std["spread_factor"] == 7
    assert not config["nocca"] and not config["nodc"] and not config["nodwell"]
    assert isinstance(config["MuxTime"], float)
    gateway = daemon.core.state.lorawan.gateway(STATION_GW)
    assert gateway["connection"] == "station" and gateway["station"]["model"] == "rpi"
    async with logged_in(daemon) as (http, _):
        page = (await http.get("/gateways")).text
    assert STATION_GW in page and "Basics Station" in page


async def test_abp_vector_through_station_is_one_comm_rx(daemon):
    v = ABP_VECTOR
    await add_abp(daemon.core, dev_eui="0011223344556677", dev_addr=v["dev_addr"], nwk=v["nwk"], app=v["app"])
    async with open_monitor(daemon) as monitor, SimStation(daemon).connect() as station:
        await station.uplink(bytes.fromhex(v["phy"]), dr=5, freq=868_300_000, rssi=-71, snr=7.25)
        rx = await monitor.comm("comm_rx")
        gwrx = await monitor.comm("comm_gwrx")
    assert rx["DevEui"] == "0011223344556677" and rx["Payload"] == v["payload"] and rx["Port"] == str(v["port"])
    assert rx["GatewayEUIs"] == [STATION_GW] and rx["Extra"]["seqno"] == str(v["fcnt"])
    assert rx["Extra"]["frequency"] == "868.3" and rx["Extra"]["sf"] == "7" and rx["Extra"]["rssi"] == "-71"
    assert gwrx["Payload"] == v["phy"].lower()


async def test_otaa_vector_join_gets_a_dnmsg_and_the_session_works(daemon):
    v = JOIN_VECTOR
    await add_otaa(daemon.core, dev_eui=v["dev_eui"], app_eui=v["app_eui"], app_key=v["app_key"])
    device = SimDevice.otaa(v["dev_eui"], v["app_eui"], v["app_key"])
    device.dev_nonce = v["dev_nonce"]
    async with open_monitor(daemon) as monitor, SimStation(daemon).connect() as station:
        up = await station.uplink(bytes.fromhex(v["phy"]), dr=3, freq=867_500_000, rctx=7)
        dn = await station.expect("dnmsg")
        assert dn["DevEui"] == "33-31-38-32-74-35-69-05" and dn["dC"] == 0 and isinstance(dn["diid"], int)
        assert dn["RxDelay"] == 5 and dn["RX1DR"] == 3 and dn["RX1Freq"] == 867_500_000
        assert dn["RX2DR"] == 0 and dn["RX2Freq"] == 869_525_000 and dn["priority"] == 0
        assert dn["xtime"] == up["upinfo"]["xtime"] and dn["rctx"] == 7 and isinstance(dn["MuxTime"], float)
        accept = device.decode_downlink(bytes.fromhex(dn["pdu"]))
        assert accept["mtype"] == "join_accept"
        joined = await monitor.comm("comm_join")
        assert joined["GatewayEUIs"] == [STATION_GW] and joined["Extra"]["accepted"] == "true"

        await station.uplink(device.uplink(9, b"joined via station"), dr=5)
        rx = await monitor.comm("comm_rx")
        assert rx["DevEui"] == v["dev_eui"] and rx["Payload"] == b"joined via station".hex()

        await station.dntxed(dn)  # the join-accept's delivery report
        sendack = await monitor.comm("comm_txsendack")
    assert sendack["DevEui"] == v["dev_eui"] and sendack["Error"] == "" and sendack["GatewayEUIs"] == [STATION_GW]
    assert sendack["Extra"]["kind"] == "join_accept"


async def test_same_uplink_via_udp_and_station_is_one_comm_rx_with_both_euis(daemon):
    v = ABP_VECTOR
    await add_abp(daemon.core, dev_eui="0011223344556677", dev_addr=v["dev_addr"], nwk=v["nwk"], app=v["app"])
    phy = bytes.fromhex(v["phy"])
    async with open_monitor(daemon) as monitor, SimStation(daemon).connect() as station, \
            UdpGateway(daemon.udp_port, GW1) as gw:
        await gw.push(phy, lsnr=2.0)
        await station.uplink(phy, snr=9.0)
        rx = await monitor.comm("comm_rx")
        gwrx = [await monitor.comm("comm_gwrx", GatewayEUIs=[eui]) for eui in (GW1, STATION_GW)]
    assert sorted(rx["GatewayEUIs"]) == sorted([GW1, STATION_GW])
    assert rx["GatewayEUIs"][0] == STATION_GW  # best SNR first
    assert len(gwrx) == 2
    uplinks = await wait_for(lambda: records_of(daemon.core, "lorawan.uplink"))
    assert len(uplinks) == 1 and len(monitor.all("comm_rx")) == 1


async def test_monitor_tx_reaches_the_station_and_dntxed_is_comm_txsendack(daemon):
    v = ABP_VECTOR
    await add_abp(daemon.core, dev_eui="0011223344556677", dev_addr=v["dev_addr"], nwk=v["nwk"], app=v["app"])
    device = SimDevice.abp(v["dev_addr"], v["nwk"], v["app"], fcnt=3)
    async with open_monitor(daemon) as monitor, SimStation(daemon).connect() as station:
        reply = await monitor.tx({"function": "TX", "DevEUI": "0011223344556677", "Port": 12, "Payload": "beef",
                                  "Reference": "st-1"})
        assert reply["Result"] == "Success"
        up = await station.uplink(device.uplink(1, b"x"), dr=4, freq=868_100_000)
        dn = await station.expect("dnmsg")
        assert dn["DevEui"] == "00-11-22-33-44-55-66-77" and dn["RxDelay"] == 1
        assert dn["RX1DR"] == 4 and dn["RX1Freq"] == 868_100_000 and dn["xtime"] == up["upinfo"]["xtime"]
        down = device.decode_downlink(bytes.fromhex(dn["pdu"]))
        assert down["f_port"] == 12 and down["payload"] == b"\xbe\xef"
        sent = await monitor.comm("comm_tx", Reference="st-1")
        assert sent["GatewayEUIs"] == [STATION_GW]
        await station.dntxed(dn)
        ack = await monitor.comm("comm_txsendack", Reference="st-1")
    assert ack["Error"] == "" and ack["DevEui"] == "0011223344556677"


async def test_timesync_is_answered_with_gps_time(daemon):
    async with SimStation(daemon).connect() as station:
        await station.send({"msgtype": "timesync", "txtime": 123456.0})
        reply = await station.expect("timesync")
    assert reply["txtime"] == 123456.0
    # Microseconds since 1980-01-06: more than 40 years' worth.
    assert reply["gpstime"] > 40 * 365 * 86400 * 1_000_000


async def test_token_is_required_once_registered_and_kept_hashed(daemon):
    result = await ops.call(daemon.core, "gateway.add", {"eui": STATION_GW, "token": TOKEN})
    assert result["token"] is True and "token_hash" not in result
    for token in (None, "wrong-token-0123456789"):
        with pytest.raises(ConnectionRejected) as rejected:
            async with SimStation(daemon, token=token).connect():
                pass
        assert rejected.value.status_code == 401
        assert "error" in await SimStation(daemon, token=token).discover()
    async with SimStation(daemon, token=TOKEN).connect() as station:
        assert station.router_config["region"] == "EU863"
    assert TOKEN.encode() not in journal_bytes(daemon.core)
    assert counter(daemon.core, "gatewayd_station_refused_total", reason="authentication_failed") == 4
    async with httpx.AsyncClient(base_url=daemon.base_url, headers=daemon.auth) as http:
        shown = (await http.get(f"/api/gateways/{STATION_GW}")).json()
    assert shown["connection"] == "station" and shown["token"] is True and "token_hash" not in shown


@pytest.fixture
def lorawan_settings() -> dict:
    return {"station_max_frame_bytes": 2048}


async def test_unknown_gateways_are_refused_when_not_accepted(daemon):
    daemon.core.settings.lorawan.accept_unknown_gateways = False
    reply = await SimStation(daemon).discover()
    assert reply == {"router": "b827:ebff:fe61:2a0d", "error": "unknown gateway"}
    with pytest.raises(ConnectionRejected) as rejected:
        async with SimStation(daemon).connect():
            pass
    assert rejected.value.status_code == 403
    assert daemon.core.state.lorawan.gateway(STATION_GW) is None


async def test_second_connection_replaces_the_first(daemon):
    async with SimStation(daemon).connect() as first:
        async with SimStation(daemon).connect() as second:
            assert await first.closed() == 4002
            await second.send({"msgtype": "timesync", "txtime": 1.0})
            assert (await second.expect("timesync"))["txtime"] == 1.0
            assert daemon.core.state.lorawan.gateway(STATION_GW)["online"]
    await wait_for(lambda: not daemon.core.state.lorawan.gateway(STATION_GW)["online"])


async def test_hostile_frames_are_counted_dropped_or_closed(daemon):
    core = daemon.core
    async with SimStation(daemon).connect() as station:
        await station.send({"msgtype": "getxtime"})
        await station.send("not json")
        await station.send({"msgtype": "updf", "MHdr": 64, "DevAddr": "x", "upinfo": {}})
        await station.send({"msgtype": "updf", "MHdr": 64, "DevAddr": 1, "FCtrl": 3, "FOpts": "", "FCnt": 1,
                            "FPort": -1, "FRMPayload": "", "MIC": 0, "DR": 0, "Freq": 868100000,
                            "upinfo": {"xtime": 1}})
        await station.send({"msgtype": "timesync", "txtime": 2.0})
        assert (await station.expect("timesync"))["txtime"] == 2.0  # still served after the junk
        assert counter(core, "gatewayd_station_messages_total", msgtype="unknown") == 1
        assert counter(core, "gatewayd_station_malformed_total", reason="bad_json") == 1
        assert counter(core, "gatewayd_station_malformed_total", reason="missing") == 1
        assert counter(core, "gatewayd_station_malformed_total", reason="bad_field") == 1
        async with SimStation(daemon, eui="0000000000000042").connect() as other:
            await station.send("x" * 4096)
            assert await station.closed() == 1009
            await other.send({"msgtype": "timesync", "txtime": 3.0})
            assert (await other.expect("timesync"))["txtime"] == 3.0  # one bad gateway affects no other


async def test_stations_are_closed_with_1001_on_shutdown(daemon):
    async with SimStation(daemon).connect() as station:
        await daemon.stop()
        assert await station.closed() == 1001


async def test_dntxed_without_a_tracked_downlink_is_only_counted(daemon):
    async with SimStation(daemon).connect() as station:
        await station.dntxed({"diid": 999, "DevEui": "00-00-00-00-00-00-00-01", "xtime": 5, "RxDelay": 1,
                              "RX1DR": 5, "RX1Freq": 868100000})
        await wait_for(lambda: counter(daemon.core, "gatewayd_lorawan_tx_ack_unmatched_total"))
    assert not records_of(daemon.core, "gateway.tx_ack")


async def test_uri_path_accepts_other_eui_spellings_and_refuses_junk(daemon):
    async with SimStation(daemon).connect(f"{daemon.ws_url}/router/{id6(STATION_GW)}") as station:
        assert station.router_config["region"] == "EU863"
    with pytest.raises(ConnectionRejected) as rejected:
        async with open_websocket_url(f"{daemon.ws_url}/router/zzz"):
            pass
    assert rejected.value.status_code == 404
    with trio.fail_after(5):
        await wait_for(lambda: not daemon.core.state.lorawan.gateway(STATION_GW)["online"])
    assert lorawan.eui_to_hex(lorawan.hex_to_eui(STATION_GW)) == STATION_GW


def test_token_file_takes_a_stations_key_lines_or_a_bare_token(tmp_path):
    from gatewayd.cli.main import CliError
    from gatewayd.connectors.lorawan.service import read_token_file

    key = tmp_path / "tc.key"
    key.write_text(f"Authorization: Bearer {TOKEN}\r\n")
    assert read_token_file({"eui": STATION_GW, "token_file": str(key)}) == {"eui": STATION_GW, "token": TOKEN}
    key.write_text(f"{TOKEN}\n")
    assert read_token_file({"token_file": str(key)}) == {"token": TOKEN}
    key.write_text("X-Other: 1\n")
    with pytest.raises(CliError):
        read_token_file({"token_file": str(key)})
    assert read_token_file({"eui": STATION_GW}) == {"eui": STATION_GW}


async def test_a_connected_station_is_kept_alive_like_a_packet_forwarder(daemon):
    daemon.core.settings.lorawan.keepalive_interval = 0.05
    async with open_monitor(daemon, "") as monitor, SimStation(daemon).connect():
        alive = await monitor.expect(lambda f: f.get("CommType") == "comm_gwalive"
                                     and f["Extra"].get("kind") == "keepalive")
    assert alive["GatewayEUIs"] == [STATION_GW] and alive["Extra"]["addr"].startswith("127.0.0.1:")


async def test_us915_needs_a_sub_band_for_stations(daemon):
    from gatewayd.connectors.lorawan import regions

    service = daemon.core.service("lorawan")
    service.region, service.sub_band = regions.get_region("US915"), 0
    async with SimStation(daemon).connect(version=False) as station:
        await station.send({"msgtype": "version", "station": "2.0.6", "protocol": 2})
        assert await station.closed() == 1011  # no 8-channel plan for all 72 channels
    service.sub_band = 2
    async with SimStation(daemon).connect() as station:
        config = station.router_config
    assert config["region"] == "US902" and [904_600_000, 4, 4] in config["upchannels"]


async def test_a_removed_gateways_station_is_closed_at_its_next_message(daemon):
    async with SimStation(daemon).connect() as station:
        await ops.call(daemon.core, "gateway.remove", {"eui": STATION_GW})
        await station.send({"msgtype": "timesync", "txtime": 1.0})
        assert await station.closed() == 4001
