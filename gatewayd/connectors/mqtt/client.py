"""One MQTT connection: paho-mqtt's protocol engine, its socket driven by trio.

paho is used through its socket-level API: trio waits until the socket is readable or writable
(`trio.lowlevel.wait_readable` / `wait_writable`) and then lets paho read (`loop_read`), write
(`loop_write`) or keep the connection alive (`loop_misc`). Every paho call and every callback runs
on the trio thread, so acknowledgements are counted without locks and cancelling the owning nursery
stops everything at once. Only the connection set-up (DNS, TCP connect, TLS handshake), which paho
does with blocking calls, runs in a worker thread, bounded by `connect_timeout`; nothing else touches
the client meanwhile.

Publishing is synchronous and never blocks: paho writes at once and keeps what the socket did not
take (`want_write`), which the writer task sends when the socket is writable. The caller bounds what
is outstanding (its in-flight window), so paho never queues messages of its own.
"""

from __future__ import annotations

import errno
import logging
import ssl
from dataclasses import dataclass
from typing import Callable

import paho.mqtt.client as paho
import trio
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ...broker_url import BrokerAddress

log = logging.getLogger("gatewayd.mqtt")

MISC_INTERVAL = 1.0  # how often paho's keep-alive bookkeeping runs
_AUTH_FAILURES = {4, 5, 0x86, 0x87, 0x8C}  # bad user name or password, not authorized, bad auth method

OnAck = Callable[[int, bool], None]  # (mid, refused by the broker)
OnMessage = Callable[[str, bytes, int, int], None]  # (topic, payload, mid, qos)


class MqttFailure(Exception):
    """A connection that could not be made or ended. `kind`: auth, tls, network, refused, lost."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class ConnectOptions:
    address: BrokerAddress
    client_id: str
    protocol: str = "3.1.1"
    username: str = ""
    password: str | None = None
    tls_context: ssl.SSLContext | None = None
    keepalive: int = 30
    connect_timeout: float = 10.0
    max_inflight: int = 256


def tls_context(ca_file: str, cert_file: str, key_file: str) -> ssl.SSLContext:
    """Verifies the broker's certificate and host name (system CAs unless `ca_file`)."""
    context = ssl.create_default_context(cafile=ca_file or None)
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def _tls_reason(exc: ssl.SSLError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {exc.verify_message or exc}"
    return exc.reason or str(exc)


class Connection:
    """Use `await connect()`, then run `serve()` in a nursery beside the tasks that publish."""

    def __init__(self, options: ConnectOptions, on_ack: OnAck, on_message: OnMessage | None = None):
        self.options = options
        self._on_ack = on_ack
        self._on_message = on_message
        self.failure: MqttFailure | None = None
        self.window = options.max_inflight  # QoS 1 messages that may await their PUBACK at once
        self._connack: ReasonCode | None = None
        self._write_wanted = trio.Event()
        self._scope: trio.CancelScope | None = None
        version = paho.MQTTv5 if options.protocol == "5" else paho.MQTTv311
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=options.client_id, protocol=version,
                             clean_session=True if version == paho.MQTTv311 else None,
                             reconnect_on_failure=False, manual_ack=True)
        client.connect_timeout = options.connect_timeout
        # paho's own in-flight limit rescans every message in flight on each PUBACK; the caller keeps
        # the window (`window`) instead, so paho's is off and it never queues.
        client.max_inflight_messages_set(0)
        if options.username:
            client.username_pw_set(options.username, options.password)
        if options.tls_context is not None:
            client.tls_set_context(options.tls_context)
        client.on_log = self._paho_log
        self._paho_error: str | None = None  # paho's last error text (it reports errors as codes)
        client.on_connect = self._connected
        client.on_publish = self._published
        client.on_message = self._message
        self.client = client

    # -- set-up ----------------------------------------------------------------------------------------
    async def connect(self) -> None:
        """TCP (+ TLS), CONNECT, and the broker's CONNACK; MqttFailure when any of it fails."""
        address = self.options.address
        with trio.move_on_after(self.options.connect_timeout + 1) as scope:
            try:
                await trio.to_thread.run_sync(self._blocking_connect, abandon_on_cancel=True)
            except ssl.SSLError as exc:  # (before OSError: it is one)
                raise MqttFailure("tls", f"TLS with {address} failed: {_tls_reason(exc)}") from None
            except OSError as exc:
                text = exc.strerror or str(exc) or type(exc).__name__
                raise MqttFailure("network", f"cannot connect to {address}: {text}") from None
            except ValueError as exc:  # e.g. a certificate that does not match the host name
                raise MqttFailure("tls", f"TLS with {address} failed: {exc}") from None
        if scope.cancelled_caught:
            raise MqttFailure("network", f"cannot connect to {address}: no answer within "
                                         f"{self.options.connect_timeout:g} s")
        # From here on trio may wait on the socket, and paho closes it itself when the connection
        # breaks: wake those waits first. (Not before: in the worker thread there is nothing to wake.)
        self.client.on_socket_close = lambda _client, _userdata, sock: trio.lowlevel.notify_closing(sock)
        if self.client.socket() is None:  # it broke while sending CONNECT
            raise self._closed_while_connecting()
        with trio.move_on_after(self.options.connect_timeout):
            try:
                while self._connack is None:
                    await self._read_once()
            except MqttFailure:
                raise self._closed_while_connecting() from None
        if self._connack is None:
            self.close()
            raise MqttFailure("network", f"{address} accepted the connection but sent no CONNACK within "
                                         f"{self.options.connect_timeout:g} s")
        self.client.on_log = None  # (paho formats a debug line per packet for it: only while connecting)
        if self._connack.is_failure:
            self.close()
            code = self._connack.value
            kind = "auth" if code in _AUTH_FAILURES else "refused"
            raise MqttFailure(kind, f"{address} refused the connection: {self._connack} (code {code})")

    def _closed_while_connecting(self) -> MqttFailure:
        address, reason = self.options.address, self._paho_error or "no reason given"
        if self.options.tls_context is not None and "ssl" in reason.lower():
            # With TLS 1.3 a broker that wants a client certificate can only say so after the
            # handshake: the connection then ends on the first read or write.
            return MqttFailure("tls", f"TLS with {address} failed: {reason} (a broker that requires a client "
                                      "certificate ends connections this way: see mqtt.cert_file / key_file)")
        return MqttFailure("network", f"{address} closed the connection before its CONNACK ({reason})")

    def _blocking_connect(self) -> None:
        address = self.options.address
        self.client.connect(address.host, address.port, keepalive=self.options.keepalive)

    # -- running -------------------------------------------------------------------------------------
    async def serve(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        """Read, write and keep alive until the connection fails (`failure` then says why, and the
        scope given to `bind` is cancelled) or the caller cancels."""
        async with trio.open_nursery() as nursery:
            if self._scope is None:
                self._scope = nursery.cancel_scope
            for loop in (self._reader, self._writer, self._keepalive):
                nursery.start_soon(self.until_failure, loop)
            task_status.started()

    def bind(self, scope: trio.CancelScope) -> None:
        """The scope to cancel when the connection fails (the session using it)."""
        self._scope = scope

    async def until_failure(self, fn, *args) -> None:
        """Run `fn(*args)`; a MqttFailure it raises (e.g. from `publish`) ends the connection."""
        try:
            await fn(*args)
        except MqttFailure as exc:
            self._fail(exc)

    def _fail(self, failure: MqttFailure) -> None:
        if self.failure is None:
            self.failure = failure
        if self._scope is not None:
            self._scope.cancel()

    def _check(self, rc: int, doing: str) -> None:
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            detail = f" ({self._paho_error})" if self._paho_error else ""
            raise MqttFailure("lost", f"connection to {self.options.address} lost while {doing}: "
                                      f"{paho.error_string(rc)}{detail}")

    async def _wait_for_socket(self, wait) -> object:
        """`wait` (trio's wait_readable or wait_writable) on paho's socket; the socket."""
        sock = self.client.socket()
        try:
            if sock is None:
                raise trio.ClosedResourceError
            await wait(sock)
        except trio.ClosedResourceError:
            raise MqttFailure("lost", f"connection to {self.options.address} closed") from None
        return sock

    async def _read_once(self) -> None:
        sock = await self._wait_for_socket(trio.lowlevel.wait_readable)
        rc = self.client.loop_read()
        if self._connack is not None and self._connack.is_failure:
            return  # refused in its CONNACK: `connect` says why (paho reports it as an error code)
        self._check(rc, "reading")
        # TLS may hold decrypted bytes the socket no longer signals: read them before waiting again.
        while isinstance(sock, ssl.SSLSocket) and self.client.socket() is sock and sock.pending():
            self._check(self.client.loop_read(), "reading")
        self.poke()

    async def _reader(self) -> None:
        while True:
            await self._read_once()

    async def _writer(self) -> None:
        while True:
            if self.client.want_write():
                await self._wait_for_socket(trio.lowlevel.wait_writable)
                self._check(self.client.loop_write(), "writing")
            else:
                await self._write_wanted.wait()  # no timeout: poke() ends it, or a failure cancels
                self._write_wanted = trio.Event()

    async def _keepalive(self) -> None:
        while True:
            await trio.sleep(MISC_INTERVAL)
            rc = self.client.loop_misc()
            if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
                raise MqttFailure("lost", f"{self.options.address} did not answer the keep-alive ping "
                                          f"within {self.client.keepalive} s")
            self.poke()

    def poke(self) -> None:
        """Something may be waiting to be written."""
        if self.client.want_write():
            self._write_wanted.set()

    # -- callbacks (run inside loop_read, on the trio thread) ------------------------------------------
    def _paho_log(self, _client, _userdata, level: int, text: str) -> None:
        if level == paho.MQTT_LOG_ERR:
            self._paho_error = text[:300]

    def _connected(self, _client, _userdata, _flags, reason_code: ReasonCode, properties) -> None:
        self._connack = reason_code
        # MQTT 5: the broker says how many QoS 1 messages it takes unacknowledged (paho ignores it).
        receive_maximum = getattr(properties, "ReceiveMaximum", None)
        if isinstance(receive_maximum, int) and receive_maximum > 0:
            self.window = min(self.window, receive_maximum)

    def _published(self, _client, _userdata, mid: int, reason_code: ReasonCode, _properties) -> None:
        self._on_ack(mid, bool(reason_code is not None and reason_code.is_failure))

    def _message(self, _client, _userdata, message) -> None:
        if self._on_message is not None:
            self._on_message(message.topic, message.payload, message.mid, message.qos)
        else:
            self.ack(message.mid, message.qos)

    # -- actions ---------------------------------------------------------------------------------------
    def publish(self, topic: str, payload: bytes, qos: int) -> int:
        """Send (or queue in paho until the socket takes it); the message id. MqttFailure if the
        connection is gone."""
        info = self.client.publish(topic, payload, qos)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            if info.rc == MQTTErrorCode.MQTT_ERR_PAYLOAD_SIZE:
                raise ValueError(f"message for {topic} is too large for MQTT")
            raise MqttFailure("lost", f"connection to {self.options.address} lost while publishing: "
                                      f"{paho.error_string(info.rc)}")
        return info.mid

    def subscribe(self, filters: list[str], qos: int) -> None:
        rc, _mid = self.client.subscribe([(topic, qos) for topic in filters])
        self._check(rc, "subscribing")
        self.poke()

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (PUBACK), once it is handled."""
        if qos > 0 and self.client.socket() is not None:
            self.client.ack(mid, qos)
            self.poke()

    def close(self) -> None:
        """Say goodbye if the connection still stands, and close the socket. Never blocks."""
        client = self.client
        sock = client.socket()
        if sock is None:
            return
        try:
            client.disconnect()  # writes DISCONNECT now if the socket takes it
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.ECONNRESET):
                log.debug("MQTT disconnect: %s", exc)
        if client.socket() is not None:  # the socket did not take the DISCONNECT: just close it
            client._sock_close()  # (paho has no public call for this; it also runs on_socket_close)
