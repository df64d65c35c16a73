"""A real Mosquitto for the tests: its own config file in a temporary directory, a free loopback
port, optionally a password file and TLS with a test CA; plus an independent subscriber (paho in
its own thread) that records what arrives."""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as paho
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- a test CA -------------------------------------------------------------------------------------------
def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _write_key(key, path: Path) -> None:
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


@dataclass
class TlsFiles:
    ca_file: Path
    cert_file: Path  # the broker's
    key_file: Path
    client_cert_file: Path  # a client certificate from the same CA
    client_key_file: Path


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (builder.serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1)))


def _issue(ca_cert: x509.Certificate, ca_key, common_name: str, cert_path: Path, key_path: Path,
           names: list | None = None) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = _validity(x509.CertificateBuilder().subject_name(_name(common_name)).issuer_name(ca_cert.subject)
                        .public_key(key.public_key()))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert_path.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_path)


def make_ca(directory: Path, name: str = "gatewayd test CA") -> TlsFiles:
    """A CA, a server certificate it signs for localhost / 127.0.0.1, and a client certificate."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (_validity(x509.CertificateBuilder().subject_name(_name(name)).issuer_name(_name(name))
                         .public_key(ca_key.public_key()))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                            content_commitment=False, key_encipherment=False,
                                            data_encipherment=False, key_agreement=False, encipher_only=False,
                                            decipher_only=False), critical=True)
               .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key",
                     directory / "client.pem", directory / "client.key")
    files.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    _issue(ca_cert, ca_key, "localhost", files.cert_file, files.key_file,
           [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    _issue(ca_cert, ca_key, "gatewayd-site1", files.client_cert_file, files.client_key_file)
    return files


# -- the broker ------------------------------------------------------------------------------------------
class Broker:
    def __init__(self, directory: Path, *, users: dict[str, str] | None = None, tls: TlsFiles | None = None,
                 client_certificates: bool = False, max_inflight: int = 0):
        self.directory = Path(directory)
        self.max_inflight = max_inflight  # 0: no limit; MQTT 5 clients are told it as Receive Maximum
        self.client_certificates = client_certificates
        self.directory.mkdir(parents=True, exist_ok=True)
        self.users = users
        self.tls = tls
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.persistent = False  # keep sessions of persistent clients across restarts
        self.log_path = self.directory / "mosquitto.log"

    @property
    def url(self) -> str:
        return f"{'mqtts' if self.tls else 'mqtt'}://127.0.0.1:{self.port}"

    def _config(self) -> Path:
        persistence = [f"persistence true", f"persistence_location {self.directory}/"] if self.persistent \
            else ["persistence false"]
        lines = [f"listener {self.port} 127.0.0.1", *persistence, f"log_dest file {self.log_path}",
                 "log_type error", "log_type warning", "log_type notice", f"max_inflight_messages {self.max_inflight}",
                 "max_queued_messages 100000"]
        if os.geteuid() == 0:
            lines.append("user root")  # (else it switches to the mosquitto user, who cannot read tmp files)
        if self.users is not None:
            passwords = self.directory / "passwords"
            passwords.write_text("")
            for user, password in self.users.items():
                subprocess.run([MOSQUITTO_PASSWD, "-b", str(passwords), user, password], check=True,
                               capture_output=True, timeout=30)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls is not None:
            lines += [f"cafile {self.tls.ca_file}", f"certfile {self.tls.cert_file}", f"keyfile {self.tls.key_file}"]
            if self.client_certificates:
                lines += ["require_certificate true"]
        path = self.directory / "mosquitto.conf"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self, timeout: float = 10.0) -> "Broker":
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self._config())], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while True:  # until the port accepts connections
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode()} "
                                   f"{self.log_path.read_text() if self.log_path.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError("mosquitto did not start listening")
                time.sleep(0.02)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open, nothing is answered."""
        self.proc.send_signal(19)

    def resume(self) -> None:
        self.proc.send_signal(18)


# -- an independent subscriber -----------------------------------------------------------------------------
class Subscriber:
    """paho's own threaded loop, QoS 1, recording (topic, body) as they arrive."""

    def __init__(self, broker: Broker, topic: str = "#", *, username: str = "", password: str = "",
                 client_id: str = "", persistent: bool = False):
        self.messages: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-sub-{free_port()}",
                             clean_session=not persistent)
        client.reconnect_delay_set(1, 1)
        if username:
            client.username_pw_set(username, password)
        if broker.tls is not None:
            client.tls_set(ca_certs=str(broker.tls.ca_file), certfile=str(broker.tls.client_cert_file),
                           keyfile=str(broker.tls.client_key_file))
        client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        client.on_message = self._received
        self.client = client
        self.broker = broker

    def _received(self, _client, _userdata, message) -> None:
        try:
            body = json.loads(message.payload)
        except ValueError:
            body = {"raw": message.payload.decode(errors="replace")}
        with self._lock:
            self.messages.append((message.topic, body))

    async def start(self) -> "Subscriber":
        self.client.connect("127.0.0.1", self.broker.port)
        self.client.loop_start()
        with trio.fail_after(10):
            while not self._subscribed.is_set():
                await trio.sleep(0.01)
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def snapshot(self) -> list[tuple[str, dict]]:
        with self._lock:
            return list(self.messages)

    async def wait_for(self, predicate, timeout: float = 10.0):
        with trio.fail_after(timeout):
            while True:
                found = predicate(self.snapshot())
                if found:
                    return found
                await trio.sleep(0.01)

    def publish(self, topic: str, payload: bytes | str, qos: int = 1) -> None:
        self.client.publish(topic, payload, qos).wait_for_publish(10)
