"""Alert episodes with a mock clock: the engine decides, the state part applies, replay rebuilds."""

from __future__ import annotations

from dataclasses import replace

from gatewayd.connectors.alerts.engine import (ClockReading, DeviceSeen, GatewaySeen, Observations, TerminalSeen,
                                               Thresholds, evaluate, iso)
from gatewayd.connectors.alerts.state import AlertsState
from gatewayd.journal.record import Record
from gatewayd.state import State

T0 = 1_800_000_000.0


class World:
    """Devices, gateways and terminals as the checker would observe them, a journal of what was
    applied, and a clock that moves only when told."""

    def __init__(self, **limits):
        self.now = T0
        self.started = T0
        self.limits = Thresholds(**limits)
        self.state = State([AlertsState()])
        self.journal: list[Record] = []
        self.devices: dict[str, DeviceSeen] = {}
        self.gateways: dict[str, GatewaySeen] = {}
        self.terminals: dict[str, TerminalSeen] = {}
        self.disk: float | None = 50.0
        self.clocks: dict[str, ClockReading] = {}

    @property
    def part(self) -> AlertsState:
        return self.state.alerts

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def record(self, type_: str, data: dict) -> None:
        record = Record(len(self.journal) + 1, iso(self.now), type_, data)
        self.journal.append(record)
        self.state.apply(record)

    def device(self, device_id: str, *, online: bool, tags=(), enabled=True) -> None:
        before = self.devices.get(device_id)
        if before is None or before.online != online:
            self.record("device.online" if online else "device.offline", {"device_id": device_id})
        self.devices[device_id] = DeviceSeen(device_id, device_id, tuple(tags), enabled, online, None)

    def check(self) -> list[tuple[str, str, str]]:
        offline = self.part.device_offline
        devices = [replace(d, offline_since=None if d.online else offline.get(d.id)) for d in self.devices.values()]
        terminals = [replace(t, offline_since=None if t.online else self.part.terminal_offline.get(t.sn))
                     for t in self.terminals.values()]
        obs = Observations(self.now, self.started, devices, list(self.gateways.values()), terminals,
                           "/state", self.disk, dict(self.clocks))
        decided = evaluate(obs, self.part.active, self.limits)
        for type_, data in decided:
            self.record(type_, data)
        return [(type_.split(".")[1], data["kind"], data["subject"]) for type_, data in decided]

    def restart(self) -> None:
        """A new process: the model comes back from the journal, the start time is now."""
        self.state = State([AlertsState()])
        self.state.replay(self.journal)
        self.started = self.now

    def alert_records(self) -> list[tuple[str, str]]:
        return [(r.type, r.data["subject"]) for r in self.journal if r.type.startswith("alert.")]


def test_device_offline_and_back_gives_one_raised_and_one_cleared():
    world = World(device_offline_after=300)
    world.device("d1", online=True)
    assert world.check() == []
    world.device("d1", online=False)
    world.advance(299)
    assert world.check() == []
    world.advance(1)
    assert world.check() == [("raised", "device_offline", "d1")]
    for _ in range(5):
        world.advance(60)
        assert world.check() == []
    world.device("d1", online=True)
    assert world.check() == [("cleared", "device_offline", "d1")]
    world.advance(1000)
    assert world.check() == []
    assert world.alert_records() == [("alert.raised", "d1"), ("alert.cleared", "d1")]
    raised, cleared = [r for r in world.journal if r.type.startswith("alert.")]
    assert raised.data["id"] == cleared.data["id"] and raised.data["since"] == cleared.data["since"]
    assert cleared.data["reason"] == "back online"


def test_restart_while_offline_neither_loses_nor_duplicates():
    world = World(device_offline_after=300)
    world.device("d1", online=True)
    world.device("d1", online=False)
    world.advance(400)
    assert world.check() == [("raised", "device_offline", "d1")]
    world.advance(3600)  # stopped for an hour
    world.restart()
    assert list(world.part.active) == ["device_offline:d1"]
    for _ in range(10):
        world.advance(120)
        assert world.check() == []
    world.device("d1", online=True)
    assert world.check() == [("cleared", "device_offline", "d1")]
    assert world.alert_records() == [("alert.raised", "d1"), ("alert.cleared", "d1")]


def test_downtime_does_not_count_but_the_alert_is_not_lost():
    world = World(device_offline_after=300)
    world.device("d1", online=True)
    world.device("d1", online=False)
    world.advance(200)
    assert world.check() == []
    world.advance(7200)
    world.restart()
    world.advance(299)
    assert world.check() == []  # a full threshold after the start to come back
    world.advance(1)
    assert world.check() == [("raised", "device_offline", "d1")]
    raised = world.journal[-1]
    assert raised.data["since"] == world.journal[1].ts  # the episode began when it went offline


def test_a_flap_between_checks_ends_the_episode():
    world = World(device_offline_after=60)
    world.device("d1", online=True)
    world.device("d1", online=False)
    world.advance(61)
    assert world.check() == [("raised", "device_offline", "d1")]
    world.advance(1)
    world.device("d1", online=True)
    world.advance(1)
    world.device("d1", online=False)  # back and gone again before the next check
    assert world.check() == [("cleared", "device_offline", "d1")]
    world.advance(60)
    assert world.check() == [("raised", "device_offline", "d1")]
    first, second = [r.data["id"] for r in world.journal if r.type == "alert.raised"]
    assert first != second


def test_rules_per_tag_and_per_device():
    rules = ({"tag": "battery", "device_offline_after": 3600}, {"tag": "mains", "device_offline_after": 10},
             {"device": "special", "device_offline_after": 0})
    world = World(device_offline_after=300, rules=rules)
    world.device("b", online=True, tags=["battery", "mains"])
    world.device("m", online=True, tags=["mains"])
    world.device("special", online=True, tags=["mains"])
    world.device("plain", online=True)
    for name in ("b", "m", "special", "plain"):
        world.device(name, online=False, tags=world.devices[name].tags)
    world.advance(10)
    assert world.check() == [("raised", "device_offline", "m")]
    world.advance(290)
    assert world.check() == [("raised", "device_offline", "plain")]
    world.advance(3300)
    assert world.check() == [("raised", "device_offline", "b")]
    world.advance(100_000)
    assert world.check() == []  # "special" has its own rule: never
    assert world.part.active["device_offline:b"]["rule"] == "tag:battery"


def test_a_disabled_device_or_a_rule_turned_off_clears():
    world = World(device_offline_after=10)
    world.device("d1", online=True)
    world.device("d1", online=False)
    world.device("d2", online=True)
    world.device("d2", online=False)
    world.advance(11)
    assert sorted(world.check()) == [("raised", "device_offline", "d1"), ("raised", "device_offline", "d2")]
    world.devices["d1"] = replace(world.devices["d1"], enabled=False)
    assert world.check() == [("cleared", "device_offline", "d1")]
    del world.devices["d2"]
    assert world.check() == [("cleared", "device_offline", "d2")]
    assert [r.data["reason"] for r in world.journal if r.type == "alert.cleared"] == ["device disabled",
                                                                                      "subject removed"]
    world.device("d3", online=True)
    world.device("d3", online=False)
    world.advance(11)
    assert world.check() == [("raised", "device_offline", "d3")]
    world.limits = replace(world.limits, device_offline_after=0)
    assert world.check() == [("cleared", "device_offline", "d3")]


def test_a_device_never_seen_raises_nothing():
    world = World(device_offline_after=10)
    world.devices["new"] = DeviceSeen("new", "new", (), True, False, None)
    world.advance(1000)
    assert world.check() == []


def test_gateway_silence():
    world = World(gateway_silent_after=120)
    world.gateways["gw"] = GatewaySeen("gw", "roof", iso(world.now))
    world.advance(119)
    assert world.check() == []
    world.advance(1)
    assert world.check() == [("raised", "gateway_silent", "gw")]
    world.advance(30)
    assert world.check() == []
    world.gateways["gw"] = GatewaySeen("gw", "roof", iso(world.now))
    assert world.check() == [("cleared", "gateway_silent", "gw")]
    world.gateways["never"] = GatewaySeen("never", "", None)
    world.advance(100_000)
    assert world.check() == [("raised", "gateway_silent", "gw")]


def test_terminal_offline_and_clock_skew():
    world = World(terminal_offline_after=600, terminal_clock_skew_seconds=120)
    world.terminals["T1"] = TerminalSeen("T1", "hall", True, True, None)
    world.terminals["P1"] = TerminalSeen("P1", "pending", False, False, None)
    world.clocks["T1"] = ClockReading(-400.0, iso(world.now))
    assert world.check() == [("raised", "clock_skew", "T1")]
    assert world.part.active["clock_skew:T1"]["details"] == {"skew_seconds": -400.0}
    world.clocks["T1"] = ClockReading(-390.0, iso(world.now))
    assert world.check() == []  # the same episode, still skewed
    world.record("terminal.offline", {"sn": "T1"})
    world.terminals["T1"] = TerminalSeen("T1", "hall", True, False, None)
    world.advance(600)
    assert world.check() == [("raised", "terminal_offline", "T1")]
    world.restart()
    world.clocks.clear()  # a new process has not read the clock yet: the skew alert stays
    world.advance(10)
    assert world.check() == []
    world.clocks["T1"] = ClockReading(3.0, iso(world.now))
    world.record("terminal.online", {"sn": "T1"})
    world.terminals["T1"] = TerminalSeen("T1", "hall", True, True, None)
    assert sorted(world.check()) == [("cleared", "clock_skew", "T1"), ("cleared", "terminal_offline", "T1")]


def test_disk_low_with_a_margin_before_clearing():
    world = World(disk_free_below_percent=10)
    world.disk = 9.5
    assert world.check() == [("raised", "disk_low", "/state")]
    world.disk = 8.0
    assert world.check() == []
    world.disk = 10.5  # above the threshold but within the margin: no flapping
    assert world.check() == []
    world.disk = None  # not measured: nothing changes
    assert world.check() == []
    world.disk = 11.5
    assert world.check() == [("cleared", "disk_low", "/state")]


def test_acknowledgement_and_snapshot_round_trip():
    world = World(device_offline_after=10)
    world.device("d1", online=True)
    world.device("d1", online=False)
    world.advance(11)
    world.check()
    alert_id = world.part.active["device_offline:d1"]["id"]
    world.record("alert.acknowledged", {"id": alert_id, "actor": "apikey:ops"})
    assert world.part.find(alert_id)["acknowledged"]["by"] == "apikey:ops"
    restored = AlertsState()
    restored.restore(world.part.snapshot())
    assert restored.active == world.part.active and restored.device_offline == world.part.device_offline
    world.device("d1", online=True)
    world.check()
    cleared = world.part.find(alert_id)
    assert cleared["state"] == "cleared" and cleared["acknowledged"]["by"] == "apikey:ops"
