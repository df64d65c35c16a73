"""The presence service in-process: handover between sessions, records, cutting a device."""

from gatewayd import ops


class FakeSession:
    connector = "ws"

    def __init__(self, device_id: str, session_id: str):
        self.device_id = device_id
        self.session_id = session_id
        self.closed = None
        self.woken = 0

    def request_close(self, code, reason):
        self.closed = (code, reason)

    def wake(self):
        self.woken += 1


async def test_handover_keeps_exactly_one_live_session(daemon):
    core = daemon.core
    presence = core.service("presence")
    device = await ops.call(core, "device.create", {"name": "d"})
    state = core.state.devices.get(device["id"])
    first, second = FakeSession(device["id"], "s1"), FakeSession(device["id"], "s2")

    await presence.attach(first, state, remote="192.0.2.1", dialect="json")
    assert presence.is_live(first) and state["online"]
    await presence.attach(second, state, remote="192.0.2.2", dialect="xml")
    assert presence.is_live(second) and not presence.is_live(first)
    assert first.closed[0] == 4002 and second.closed is None

    presence.detach(first, reason="superseded", code=4002, last_seen=None)
    assert state["online"] and presence.is_live(second)  # the old session's end changes nothing
    presence.wake(device["id"])
    assert second.woken == 1 and first.woken == 0
    assert presence.cut(device["id"], 4001, "token rotated") and second.closed[0] == 4001
    presence.detach(second, reason="token rotated", code=4001, last_seen="2026-01-01T00:00:00.000000Z")
    assert not state["online"] and device["id"] not in presence.live
    kinds = [e["type"] for e in core.state.devices.events if e["device_id"] == device["id"]]
    assert kinds == ["device_connected", "device_online", "device_connected", "device_disconnected",
                     "device_disconnected", "device_offline"]
    assert not presence.cut(device["id"], 4001, "nothing live")


async def test_rate_limit_is_per_device(daemon):
    presence = daemon.core.service("presence")
    daemon.core.settings.devices.rate_per_second = 0.001
    daemon.core.settings.devices.rate_burst = 2
    assert [presence.allow_message("a") for _ in range(3)] == [True, True, False]
    assert presence.allow_message("b")
