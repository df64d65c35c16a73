"""Requests relayed by a reverse proxy listed in `server.trusted_proxies`.

When the peer of a connection is one of those proxies, its `X-Forwarded-Proto` says whether the
browser spoke HTTPS (cookies then get the Secure flag) and its `X-Forwarded-For` names the client,
so per-address limits and logs see the client and not the proxy. The client is the right-most
address of `X-Forwarded-For` that is not itself a trusted proxy (a client can write anything to
the left of what the proxies append). From any other peer these headers are ignored.
"""

from __future__ import annotations

import ipaddress
from typing import Awaitable, Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Addresses or CIDR networks; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(str(entry).strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network") from None
    return networks


def _address(text: str):
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    return ip.ipv4_mapped if ip.version == 6 and ip.ipv4_mapped is not None else ip


class ProxyHeaders:
    """ASGI middleware: trusted proxies' forwarding headers rewrite the scope's scheme and client."""

    def __init__(self, app, trusted: list[Network]):
        self.app = app
        self.trusted = trusted

    def is_trusted(self, address: str) -> bool:
        ip = _address(address)
        return ip is not None and any(ip in network for network in self.trusted)

    def __call__(self, scope, receive, send) -> Awaitable[None]:
        # Not a coroutine function: it hands back the application's awaitable, so a connection
        # keeps no frame of this middleware waiting for its whole life.
        client = scope.get("client")
        if scope["type"] in ("http", "websocket") and client and self.is_trusted(str(client[0])):
            scope = dict(scope)
            headers = {}
            for name, value in scope.get("headers", ()):
                key = name.lower()
                if key in (b"x-forwarded-proto", b"x-forwarded-for"):  # repeated headers: joined, in order
                    headers[key] = headers[key] + b"," + value if key in headers else value
            proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").split(",")[-1].strip().lower()
            if proto in ("http", "https"):
                secure = proto == "https"
                scope["scheme"] = ("https" if secure else "http") if scope["type"] == "http" else \
                    ("wss" if secure else "ws")
            chain = [part.strip() for part in headers.get(b"x-forwarded-for", b"").decode("latin-1").split(",")]
            for hop in reversed([part for part in chain if part]):
                ip = _address(hop)
                if ip is None:
                    break
                if not any(ip in network for network in self.trusted):
                    scope["client"] = (str(ip), 0)
                    break
        return self.app(scope, receive, send)
