"""Spoofable UDP: keep-alives and stats cannot grow the journal, unknown sources are limited, and
the listener binds where the TCP port does unless told otherwise."""

from __future__ import annotations

import socket

import pytest
import trio

from .helpers import GW1, UdpGateway, free_udp_port, records_of
from tests.conftest import wait_for


def counter(core, name: str, **labels) -> float:
    return core.metrics.counters.get((name, tuple(sorted(labels.items()))), 0)


async def all_written(core) -> None:
    await wait_for(lambda: core.writer.durable_seq == core.hub.next_seq - 1)


class TestCoalescing:
    @pytest.fixture
    def lorawan_settings(self):
        return {"keepalive_interval": 30.0}

    async def test_a_flood_of_keepalives_and_stats_journals_one_of_each_per_period(self, daemon):
        core = daemon.core
        async with UdpGateway(daemon.udp_port, GW1) as gw:
            for _ in range(200):
                await gw.pull()
            for n in range(50):
                await gw.stat(rxnb=n)
        await all_written(core)
        alive = [r.data for r in records_of(core, "gateway.alive")]
        assert [(a["kind"], a["came_online"]) for a in alive] == [("keepalive", True), ("stat", False)]
        assert counter(core, "gatewayd_lorawan_coalesced_total", kind="alive") == 199
        assert counter(core, "gatewayd_lorawan_coalesced_total", kind="stat") == 49


class TestUnknownSources:
    @pytest.fixture
    def lorawan_settings(self):
        return {"unknown_source_datagrams_per_second": 1.0}

    async def test_datagrams_from_unknown_addresses_are_limited_before_parsing(self, daemon):
        core = daemon.core
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as junk:
            junk.bind(("127.0.0.3", 0))
            for _ in range(50):
                junk.sendto(b"\x02\x00\x00\x09not gwmp", ("127.0.0.1", daemon.udp_port))
        await wait_for(lambda: counter(core, "gatewayd_lorawan_dropped_total", reason="unknown_source_rate") >= 45)
        parsed = sum(v for (name, _), v in core.metrics.counters.items() if name == "gatewayd_gwmp_malformed_total")
        assert parsed <= 3
        async with UdpGateway(daemon.udp_port, GW1) as gw:  # a real gateway from another address
            for _ in range(10):  # once admitted, its address is no longer limited
                await gw.pull()
                await gw.stat()


class TestBindAddress:
    @pytest.fixture
    def daemon_sections(self):
        return {"server": {"udp_port": free_udp_port()}}  # udp_host left at its default

    async def test_the_udp_listener_follows_the_tcp_host(self, daemon):
        listener = daemon.core.service("udp")
        assert daemon.core.settings.server.host == "127.0.0.1"
        assert listener.sock.getsockname()[0] == "127.0.0.1"
        with trio.fail_after(5):
            async with UdpGateway(daemon.udp_port, GW1) as gw:
                await gw.pull()
