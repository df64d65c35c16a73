"""Journal records as northbound events (pure): kinds, subjects, bodies, and every communication once."""

import json
from functools import partial
from zoneinfo import ZoneInfo

import pytest

from gatewayd.journal.record import Record
from gatewayd.comm_tables import Comms, CommTables
from gatewayd.connectors import CONNECTORS
from gatewayd.northbound import events as northbound
from gatewayd.northbound.events import COMMAND_REJECTED, EVENT_KINDS, NoDirectory, may_have_events
from gatewayd.connectors.monitor.resiot import Communication, to_envelope

comms = CommTables.of(CONNECTORS)
events_of = partial(northbound.events_of, comms=comms)

TS = "2026-06-12T09:15:30.123456Z"
EUI = "0732227a557d8679"
GW1, GW2 = "218000ac0000a05f", "b827ebfffe612a0d"

UPLINK = {
    "dev_eui": EUI, "device_id": "meter-7", "app_eui": "006c3b194374ac7f", "dev_addr": "26011bda", "fcnt": 1953,
    "mtype": "confirmed_up", "confirmed": True, "port": 5, "payload": "9b69", "phy": "80da1b0126", "adr": True,
    "ack": True, "duplicate": False, "dr": 5, "datr": "SF7BW125", "freq": 867.3, "codr": "4/5",
    "gateways": [{"eui": GW1, "rssi": -18, "snr": 9.5, "tmst": 1000, "chan": 4, "rfch": 0},
                 {"eui": GW2, "rssi": -90, "snr": -2.0, "tmst": 2000, "chan": 4, "rfch": 0}],
    "acked": {"command_id": "c-old", "reference": "r-old"},
    "downlink": {"command_id": "c-new", "reference": "r-new", "port": 9, "payload": "0102", "confirmed": False,
                 "fcnt": 12, "gateway": GW1, "window": "RX1"},
}

# One record of every type that gives events, shaped as the services journal them.
RECORDS = [
    Record(1, TS, "device.telemetry", {"device_id": "d1", "name": "Boiler", "connector": "ws",
                                        "payload": {"t": 22.5}, "msg_id": 7, "dialect": "json"}),
    Record(2, TS, "device.event", {"device_id": "d1", "name": "Boiler", "connector": "ws", "event": "door_open",
                                    "payload": {"zone": 2}}),
    Record(3, TS, "device.connected", {"device_id": "d1", "name": "Boiler", "connector": "ws", "session": "s1",
                                        "remote": "127.0.0.1", "dialect": "json"}),
    Record(4, TS, "device.online", {"device_id": "d1", "name": "Boiler", "connector": "ws"}),
    Record(5, TS, "device.offline", {"device_id": "d1", "name": "Boiler", "connector": "ws", "reason": "idle",
                                      "last_seen": TS}),
    Record(6, TS, "command.queued", {"device_id": "d1", "command_id": "cmd_1", "command": "reboot",
                                      "payload": {"delay": 5}, "expires_at": TS, "source": "mqtt"}),
    Record(7, TS, "command.sent", {"device_id": "d1", "command_id": "cmd_1", "command": "reboot",
                                    "payload": {"delay": 5}, "session": "s1", "attempt": 1, "confirm": True,
                                    "reference": "ref"}),
    Record(8, TS, "command.acknowledged", {"device_id": "d1", "command_id": "cmd_1", "command": "reboot",
                                            "by": "device", "result": {"ok": 1}, "confirm": True, "reference": "ref"}),
    Record(9, TS, "command.failed", {"device_id": "d1", "command_id": "cmd_2", "command": "x", "error": "nope"}),
    Record(10, TS, "command.expired", {"device_id": "d1", "command_id": "cmd_3", "command": "x", "expires_at": TS}),
    Record(11, TS, "lorawan.uplink", UPLINK),
    Record(12, TS, "lorawan.join", {"dev_eui": EUI, "device_id": "meter-7", "app_eui": "006c3b194374ac7f",
                                     "dev_nonce": 77, "dr": 5, "datr": "SF7BW125", "freq": 868.1, "codr": "4/5",
                                     "gateways": [{"eui": GW1, "rssi": -40, "snr": 7.0}], "dev_addr": "26011bda",
                                     "app_nonce": 1, "net_id": "000000", "nwk_s_key": "SEALED-1",
                                     "app_s_key": "SEALED-2", "rx_delay": 1, "rx2_dr": 0, "join_accept": {}}),
    Record(13, TS, "lorawan.join_refused", {"dev_eui": EUI, "device_id": "meter-7", "app_eui": "", "dev_nonce": 77,
                                             "dr": 5, "datr": "SF7BW125", "freq": 868.1, "gateways": [],
                                             "reason": "dev_nonce_replay"}),
    Record(14, TS, "lorawan.downlink_queued", {"dev_eui": EUI, "device_id": "meter-7", "command_id": "c-new",
                                                "port": 9, "payload": "0102", "confirm": False, "reference": "r-new",
                                                "source": "mqtt"}),
    Record(15, TS, "gateway.alive", {"eui": GW1, "kind": "stat", "addr": "127.0.0.1:1700", "version": 2,
                                      "stat": {"rxnb": 3}, "came_online": True}),
    Record(16, TS, "gateway.offline", {"eui": GW1, "last_seen": TS}),
    Record(17, TS, "gateway.tx_ack", {"gateway": GW1, "token": 4660, "error": "TOO_LATE", "kind": "downlink",
                                       "dev_eui": EUI, "device_id": "meter-7", "command_id": "c-new",
                                       "reference": "r-new"}),
    Record(18, TS, "terminal.registered", {"sn": "ZK001", "connector": "terminal", "status": "accepted",
                                            "cpusn": "c1", "devinfo": {"modelname": "F22"}}),
    Record(19, TS, "terminal.online", {"sn": "ZK001", "connector": "terminal", "remote": "127.0.0.1"}),
    Record(20, TS, "terminal.offline", {"sn": "ZK001", "connector": "terminal", "reason": "closed"}),
    Record(21, TS, "attendance.punches", {"source": "ZK001", "connector": "http", "tz": "UTC", "held": False,
                                           "logindex": 4, "punches": [
                                               {"enrollid": 12, "time": "2026-06-12 09:15:30", "mode": 8, "inout": 0,
                                                "event": 0, "utc": TS, "image": "AAAA", "key_time": "x"}]}),
    Record(22, TS, "terminal.command_queued", {"command_id": "t1", "sn": "ZK001", "command": "opendoor",
                                                "params": {"doornum": 1}, "source": "mqtt", "reference": None,
                                                "confirm": True, "expires": None}),
    Record(23, TS, "terminal.command_sent", {"command_id": "t1", "sn": "ZK001", "command": "opendoor",
                                              "params": {"doornum": 1}, "try": 1, "reference": None, "confirm": True,
                                              "connector": "terminal"}),
    Record(24, TS, "terminal.command_acknowledged", {"command_id": "t1", "sn": "ZK001", "command": "opendoor",
                                                      "reference": None, "confirm": True, "connector": "terminal",
                                                      "result": {"result": True}}),
    Record(25, TS, "terminal.command_failed", {"command_id": "t2", "sn": "ZK001", "command": "x", "reference": None,
                                                "confirm": False, "connector": "terminal", "reason": "refused"}),
    Record(26, TS, COMMAND_REJECTED, {"subject": "device", "id": "d1", "source": "mqtt",
                                      "error": "command is required", "request": "{}"}),
    Record(27, TS, COMMAND_REJECTED, {"subject": "terminal", "id": "ZK001", "source": "mqtt",
                                      "error": "params must be an object", "request": "{}"}),
    Record(28, TS, "lorawan.downlink_failed", {"dev_eui": EUI, "device_id": "meter-7", "failed": [
        {"command_id": "c-c", "reference": "r-c", "reason": "no gateway heard the device"}]}),
]


def kinds(record):
    return [(e.subject, e.subject_id, e.event) for e in events_of(record)]


def test_every_event_kind_of_every_subject_is_produced():
    produced = {(e.subject, e.event) for r in RECORDS for e in events_of(r)}
    expected = {(subject, kind) for subject, names in EVENT_KINDS.items() for kind in names}
    assert produced == expected


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r.seq}-{r.type}")
def test_every_communication_is_in_exactly_one_event(record):
    zone = ZoneInfo("Europe/Rome")
    events = events_of(record, zone=zone)
    carried = [e.body["comm"] for e in events if e.body["comm"] is not None]
    expected = [to_envelope(c, zone) for c in comms.communications(record)]
    assert sorted(map(json.dumps, carried)) == sorted(map(json.dumps, expected))


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: f"{r.seq}-{r.type}")
def test_common_body_fields_and_json(record):
    events = events_of(record, site="plant-1")
    assert events and may_have_events(record.type, comms)
    for index, event in enumerate(events):
        body = event.body
        assert list(body)[:5] == ["seq", "event_id", "ts", "site", "event"]
        assert (body["seq"], body["event_id"], body["ts"], body["site"], body["event"]) == \
            (record.seq, f"{record.seq}.{index}", TS, "plant-1", event.event)
        assert event.event in EVENT_KINDS[event.subject]
        assert json.loads(json.dumps(body)) == body
        assert "SEALED" not in json.dumps(body)  # sealed session keys stay out


def test_lorawan_uplink_is_gateway_copies_then_up_then_command_progress():
    assert kinds(RECORDS[10]) == [
        ("gateway", GW1, "rx"), ("gateway", GW2, "rx"), ("device", "meter-7", "up"),
        ("device", "meter-7", "txconfirm"), ("device", "meter-7", "command"),
        ("device", "meter-7", "tx"), ("device", "meter-7", "command"), ("gateway", GW1, "tx"), ("gateway", GW1, "tx")]
    events = events_of(RECORDS[10])
    handed, taken = events[-2].body, events[-1].body
    assert handed["comm"]["CommType"] == "comm_gwtx" and handed["dev_eui"] == EUI and handed["window"] == "RX1"
    assert taken["comm"]["CommType"] == "comm_txinfo" and taken["comm"]["Reference"] == handed["comm"]["Reference"]
    up = events[2].body
    assert (up["device_id"], up["dev_eui"], up["data"], up["fport"], up["fcnt"]) == ("meter-7", EUI, "9b69", 5, 1953)
    assert up["gateways"] == [GW1, GW2] and up["rssi"] == -18 and up["comm"]["CommType"] == "comm_rx"
    assert events[0].body["comm"]["GatewayEUIs"] == [GW1] and events[1].body["comm"]["GatewayEUIs"] == [GW2]
    assert events[4].body["state"] == "acknowledged" and events[4].body["command_id"] == "c-old"
    assert events[6].body["state"] == "sent" and events[6].body["data"] == "0102"


def test_device_bodies_carry_what_the_device_sent():
    [up] = events_of(RECORDS[0])
    assert up.body["payload"] == {"t": 22.5} and up.body["name"] == "Boiler" and up.body["type"] == "telemetry"
    assert bytes.fromhex(up.body["comm"]["Payload"]) == b'{"t":22.5}'
    [event] = events_of(RECORDS[1])
    assert event.body["event_name"] == "door_open" and event.body["payload"] == {"zone": 2}
    [online], [offline] = events_of(RECORDS[3]), events_of(RECORDS[4])
    assert online.body["online"] is True and offline.body["online"] is False and offline.body["comm"] is None
    assert offline.body["reason"] == "idle"


def test_command_sent_is_a_tx_and_a_state_change():
    assert kinds(RECORDS[6]) == [("device", "d1", "tx"), ("device", "d1", "command")]
    tx, state = events_of(RECORDS[6])
    assert tx.body["comm"]["CommType"] == "comm_tx" and state.body["state"] == "sent" and state.body["comm"] is None
    assert kinds(RECORDS[7]) == [("device", "d1", "txconfirm"), ("device", "d1", "command")]
    assert events_of(RECORDS[7])[1].body["result"] == {"ok": 1}
    unconfirmed = Record(30, TS, "command.acknowledged", {"device_id": "d1", "command_id": "c", "command": "x"})
    assert kinds(unconfirmed) == [("device", "d1", "command")]


def test_terminal_events():
    [attendance] = events_of(RECORDS[20])
    assert attendance.subject_id == "ZK001" and attendance.event == "attendance"
    assert attendance.body["punches"] == [{"enrollid": 12, "time": "2026-06-12 09:15:30", "mode": 8, "inout": 0,
                                           "event": 0, "utc": TS}]
    [sent] = events_of(RECORDS[22])
    assert sent.body["state"] == "sent" and sent.body["comm"]["CommType"] == "comm_tx"
    [rejected] = events_of(RECORDS[26])
    assert (rejected.subject, rejected.event, rejected.body["state"]) == ("terminal", "command", "rejected")


def test_a_request_given_up_is_a_failed_command_with_its_txsendconfirm():
    [failed] = events_of(RECORDS[-1])
    assert (failed.event, failed.body["state"], failed.body["error"]) == ("command", "failed", "no gateway heard the device")
    assert failed.body["comm"]["CommType"] == "comm_txsendconfirm" and failed.body["comm"]["Reference"] == "r-c"


def test_tx_ack_goes_to_the_device_with_its_error():
    ack, outcome = events_of(RECORDS[16])
    assert (ack.subject, ack.subject_id, ack.event) == ("device", "meter-7", "txack")
    assert ack.body["ok"] is False and ack.body["error"] == "TOO_LATE" and ack.body["comm"]["Error"] == "TOO_LATE"
    # The request's outcome (comm_txsendconfirm) is the command's state: refused, so failed or queued again.
    assert (outcome.event, outcome.body["comm"]["CommType"]) == ("command", "comm_txsendconfirm")
    assert outcome.body["state"] in ("failed", "queued") and outcome.body["error"] == "TOO_LATE"


class Names(NoDirectory):
    def device_name(self, device_id):
        return {"meter-7": "Water meter"}.get(device_id)

    def device_id_of_eui(self, dev_eui):
        return {EUI: "meter-7"}.get(dev_eui)

    def terminal_name(self, sn):
        return "Front door" if sn == "ZK001" else None


def test_names_and_ids_from_the_directory():
    record = Record(40, TS, "gateway.tx_ack", {"gateway": GW1, "token": 1, "error": "NONE", "dev_eui": EUI})
    [ack] = events_of(record, Names())
    assert (ack.subject_id, ack.body["device_id"], ack.body["name"], ack.body["ok"]) == \
        ("meter-7", "meter-7", "Water meter", True)
    [status] = events_of(RECORDS[18], Names())
    assert status.body["name"] == "Front door"


def test_records_without_events_and_unknown_communications():
    assert events_of(Record(50, TS, "auth.login", {"user": "admin"})) == []
    assert not may_have_events("auth.login", comms)

    def mapper(record):
        return [Communication(comm_type="comm_rx", connector="station", dev_eui=EUI, dt=__import__("datetime")
                              .datetime(2026, 6, 12, tzinfo=ZoneInfo("UTC")), seq=record.seq, payload=b"\x01")]

    later = CommTables.of(CONNECTORS, Comms(communications={"test.future_uplink": mapper}))
    [event] = events_of(Record(51, TS, "test.future_uplink", {}), Names(), comms=later)
    assert (event.subject, event.subject_id, event.event) == ("device", "meter-7", "up")
    assert event.body["dev_eui"] == EUI and event.body["comm"]["Payload"] == "01"


def test_a_malformed_record_gives_no_events_instead_of_failing():
    assert events_of(Record(60, TS, "lorawan.uplink", {"dev_eui": EUI})) == []


def test_state_directory_reads_the_daemons_state():
    from gatewayd.northbound.events import StateDirectory
    from gatewayd.gateway import build_state

    state = build_state()
    state.apply(Record(70, TS, "device.created", {"device_id": "d9", "name": "Pump", "kind": "ws",
                                                   "token_hash": "sha256:x", "tags": []}))
    directory = StateDirectory(state)
    assert directory.device_name("d9") == "Pump" and directory.device_name("nope") is None
    assert directory.device_id_of_eui(EUI) is None and directory.terminal_name("ZK001") is None
    assert directory.gateway_name(GW1) is None
