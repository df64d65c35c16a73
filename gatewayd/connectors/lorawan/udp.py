"""The Semtech UDP (GWMP) listener for LoRa packet forwarders: I/O only.

Binds server.udp_host (empty: the address of server.host) : server.udp_port (0 = LoRaWAN off) and publishes the bound port in
core.extras["udp_port"] before the daemon reports itself started. PUSH_DATA and PULL_DATA from an
admitted gateway are acknowledged at once, then handed to the LoRaWAN service; malformed
datagrams are counted (gatewayd_gwmp_malformed_total) and logged at a limited rate. Nothing a
datagram holds can stop this loop. Datagrams from addresses no admitted gateway used lately are
limited per address (`lorawan.unknown_source_datagrams_per_second`) before they are even parsed.
"""

from __future__ import annotations

import logging
import os
import socket
from collections import OrderedDict

import trio

from ...journal.writer import JournalUnavailable
from ...logs import RateLimitedLogger
from . import gwmp
from ...errors import ProtocolError
from ...ratelimit import KeyedBuckets

log = logging.getLogger("gatewayd.udp")

RECEIVE_BUFFER = 4 * 1024 * 1024  # room for bursts while the loop is busy
DRAIN_BATCH = 64  # datagrams handled per wake-up before yielding to other tasks
SEND_WAIT = 1.0  # longest wait for room in the send buffer
PUSH_DATA = ("gatewayd_gwmp_datagrams_total", (("type", "push_data"),))  # counted without inc()'s sorting
KNOWN_SOURCES = 4096  # addresses of admitted gateways remembered (least recently heard forgotten first)


class GwmpListener:
    def __init__(self, core):
        self.core = core
        self.sock: socket.socket | None = None  # non-blocking; trio waits on it with wait_readable
        self._rlog = RateLimitedLogger(log, 60.0)
        self._known: OrderedDict[str, None] = OrderedDict()  # addresses admitted gateways send from
        self._unknown = KeyedBuckets()
        core.metrics.describe("gatewayd_gwmp_malformed_total", "GWMP datagrams that did not parse, by reason.")
        core.metrics.describe("gatewayd_gwmp_datagrams_total", "GWMP datagrams received, by packet type.")

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        server = self.core.settings.server
        if not server.udp_port:
            log.info("LoRaWAN is off (server.udp_port = 0)")
            task_status.started()
            return
        host = server.udp_host or server.host
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with trio.socket.socket(family, socket.SOCK_DGRAM) as binder:
            try:
                await binder.bind((host, server.udp_port))  # trio resolves a host name
            except OSError as exc:
                raise OSError(exc.errno, f"cannot listen for packet forwarders on UDP "
                                         f"{host}:{server.udp_port}: {exc.strerror}") from None
            sock = socket.socket(family, socket.SOCK_DGRAM, fileno=os.dup(binder.fileno()))
        with sock:
            sock.setblocking(False)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            except OSError:
                pass
            self.sock = sock
            port = sock.getsockname()[1]
            self.core.extras["udp_port"] = port
            lorawan = self.core.service("lorawan")
            lorawan.attach_transmitter(self.send)
            log.info("listening for LoRa packet forwarders on udp://%s:%d", host, port)
            task_status.started()
            try:
                await self._serve(lorawan)
            finally:
                lorawan.attach_transmitter(None)
                self.sock = None

    async def _serve(self, lorawan) -> None:
        sock = self.sock
        while True:
            # A listener waits for datagrams. This wait always yields to the scheduler, even when
            # datagrams are queued, so under a flood the other tasks still get their turn after
            # each batch without a checkpoint of its own.
            await trio.lowlevel.wait_readable(sock)
            # Drain what is queued without a scheduler round trip per datagram.
            for _ in range(DRAIN_BATCH):
                try:
                    data, addr = sock.recvfrom(gwmp.MAX_DATAGRAM + 1)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as exc:  # e.g. an ICMP error reported on the socket
                    self._rlog.warning("recv", "UDP receive error: %s", exc)
                    break
                try:
                    await self.handle(lorawan, data, addr)
                except JournalUnavailable as exc:
                    self._rlog.error("journal", "datagram from %s not fully handled: %s", addr[0], exc)
                except Exception:
                    self.core.metrics.inc("gatewayd_gwmp_malformed_total", reason="internal")
                    self._rlog.error(f"internal:{addr[0]}", "datagram from %s could not be handled", addr[0],
                                     exc_info=True)

    def _admitted_source(self, ip: str) -> None:
        self._known[ip] = None
        self._known.move_to_end(ip)
        while len(self._known) > KNOWN_SOURCES:
            self._known.popitem(last=False)

    def _allowed(self, ip: str) -> bool:
        """Datagrams from an address no admitted gateway used are limited per address."""
        if ip in self._known:
            return True
        rate = self.core.settings.lorawan.unknown_source_datagrams_per_second
        if self._unknown.take(ip, trio.current_time(), rate, 2 * rate):
            return True
        self.core.metrics.inc("gatewayd_lorawan_dropped_total", reason="unknown_source_rate")
        return False

    async def handle(self, lorawan, data: bytes, addr: tuple) -> None:
        metrics = self.core.metrics
        if not self._allowed(addr[0]):
            return
        try:
            packet = gwmp.parse_datagram(data)
        except ProtocolError as exc:
            metrics.inc("gatewayd_gwmp_malformed_total", reason=exc.code)
            self._rlog.warning(f"{exc.code}:{addr[0]}", "malformed GWMP datagram (%d bytes) from %s: %s",
                               len(data), addr[0], exc.message[:200])
            return
        if isinstance(packet, gwmp.PushData):
            metrics.counters[PUSH_DATA] += 1
            if await lorawan.admit(packet.gateway_eui, addr, packet.version, announce=packet.stat is None):
                self._admitted_source(addr[0])
                await self.send(gwmp.push_ack(packet.version, packet.token), addr)
                await lorawan.push_data(packet, addr)
        elif isinstance(packet, gwmp.PullData):
            metrics.inc("gatewayd_gwmp_datagrams_total", type="pull_data")
            if await lorawan.admit(packet.gateway_eui, addr, packet.version, announce=False):
                self._admitted_source(addr[0])
                await self.send(gwmp.pull_ack(packet.version, packet.token), addr)
                await lorawan.pull_data(packet, addr)
        else:
            metrics.inc("gatewayd_gwmp_datagrams_total", type="tx_ack")
            if packet.gateway_eui in self.core.state.lorawan.gateways:
                await lorawan.tx_ack(packet, addr)

    async def send(self, data: bytes, addr: tuple) -> None:
        """Send one datagram. UDP sends complete at once; a full buffer is waited out briefly."""
        sock = self.sock
        if sock is None:
            return
        try:
            try:
                sock.sendto(data, addr)
            except BlockingIOError:
                with trio.move_on_after(SEND_WAIT):
                    await trio.lowlevel.wait_writable(sock)
                sock.sendto(data, addr)
        except OSError as exc:
            self.core.metrics.inc("gatewayd_gwmp_send_errors_total")
            self._rlog.warning(f"send:{addr[0]}", "cannot send to gateway at %s: %s", addr[0], exc.strerror or exc)
