"""TLS on the one port (server.certfile/keyfile), and Secure cookies there and behind a trusted
reverse proxy (server.trusted_proxies)."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl

import httpx
import pytest
import trio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from trio_websocket import open_websocket_url

from tests.dashboard.helpers import PASSWORD, csrf_of, set_password


def self_signed(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, written as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gatewayd test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def set_cookie_of(response: httpx.Response, name: str) -> str:
    return next(v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith(name + "="))


async def login(http: httpx.AsyncClient, **headers) -> httpx.Response:
    form = await http.get("/login", headers=headers)
    return await http.post("/login", headers=headers,
                           data={"username": "admin", "password": PASSWORD, "csrf_token": csrf_of(form.text)})


class TestTLS:
    @pytest.fixture
    def daemon_sections(self, tmp_path):
        certfile, keyfile = self_signed(tmp_path)
        self.trust = ssl.create_default_context(cafile=certfile)
        return {"server": {"certfile": certfile, "keyfile": keyfile}}

    async def test_the_port_speaks_https_only_and_cookies_are_secure(self, daemon):
        await set_password(daemon)
        base = f"https://127.0.0.1:{daemon.port}"
        async with httpx.AsyncClient(base_url=base, verify=self.trust, timeout=10) as http:
            assert (await http.get("/healthz")).status_code == 200
            response = await login(http)
            assert response.status_code == 303
            assert "Secure" in set_cookie_of(response, "gatewayd_session")
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient(timeout=5) as plain:
                await plain.get(f"http://127.0.0.1:{daemon.port}/healthz")

    async def test_devices_register_over_wss(self, daemon):
        async with httpx.AsyncClient(base_url=f"https://127.0.0.1:{daemon.port}", verify=self.trust,
                                     headers=daemon.auth) as http:
            device = (await http.post("/api/devices", json={"name": "tls"})).json()
        async with open_websocket_url(f"wss://127.0.0.1:{daemon.port}/ws", ssl_context=self.trust) as ws:
            await ws.send_message(json.dumps({"type": "register", "device_id": device["id"],
                                              "token": device["token"]}))
            with trio.fail_after(5):
                assert json.loads(await ws.get_message())["type"] == "registered"


class TestTrustedProxy:
    @pytest.fixture
    def daemon_sections(self):
        return {"server": {"trusted_proxies": ["127.0.0.1"]},
                "security": {"login_failures_per_minute": 100}}

    async def test_https_said_by_a_trusted_proxy_makes_cookies_secure(self, daemon):
        await set_password(daemon)
        async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as http:
            response = await login(http, **{"X-Forwarded-Proto": "https"})
            assert "Secure" in set_cookie_of(response, "gatewayd_session")
        async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as http:
            response = await login(http)
            assert "Secure" not in set_cookie_of(response, "gatewayd_session")

    async def test_the_client_address_comes_from_a_trusted_proxy(self, daemon):
        with daemon.core.hub.subscribe(10, lambda r: r.type == "auth.failed") as failures:
            async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as http:
                headers = {"Authorization": "Bearer wrong", "X-Forwarded-For": "198.51.100.1, 203.0.113.9"}
                assert (await http.get("/api/devices", headers=headers)).status_code == 401
            with trio.fail_after(5):
                record = await failures.receive.receive()
        assert record.data["source"] == "203.0.113.9"  # the right-most address the proxy appended


class TestUntrustedPeer:
    @pytest.fixture
    def daemon_sections(self):
        return {"server": {"trusted_proxies": ["10.9.8.7/32"]}}

    async def test_forwarding_headers_from_anyone_else_are_ignored(self, daemon):
        await set_password(daemon)
        headers = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as http:
            response = await login(http, **headers)
            assert "Secure" not in set_cookie_of(response, "gatewayd_session")
        with daemon.core.hub.subscribe(10, lambda r: r.type == "auth.failed") as failures:
            async with httpx.AsyncClient(base_url=daemon.base_url, timeout=10) as http:
                await http.get("/api/devices", headers={"Authorization": "Bearer wrong", **headers})
            with trio.fail_after(5):
                assert (await failures.receive.receive()).data["source"] == "127.0.0.1"
