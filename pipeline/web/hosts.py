"""The Host names the server answers to, as Jupyter does against DNS rebinding.

A web page on evil.example can make the browser send requests to a name that resolves, a
moment later, to 127.0.0.1: the browser then talks to this server while believing it talks
to evil.example, and sends `Host: evil.example`. So a request is answered only when its
Host is one the server listens on: the --host it was given, `localhost`, 127.0.0.1 and
[::1] when that is a loopback address, any IP address when it listens on all of them
(0.0.0.0 or ::, and an address is never a rebinding name), and the names added with
--allow-host (a reverse proxy's public name). Any other Host gets a 403 JSON error.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

LOOPBACK = ("localhost", "127.0.0.1", "::1")
WILDCARDS = ("0.0.0.0", "::", "")
#: The most names --allow-host may add (a proxy or two, not a list of every client).
MAX_ALLOWED = 64
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _ip(name: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def normal(name: str) -> str:
    """A host name as compared: lower case, no trailing dot, no brackets round an IPv6 address."""
    name = name.strip().lower().rstrip(".")
    return name[1:-1] if name.startswith("[") and name.endswith("]") else name


def is_host_name(name: str) -> bool:
    """A DNS name (letters, digits and hyphens in dot-separated labels) or an IP address."""
    name = normal(name)
    if _ip(name) is not None:
        return True
    return 0 < len(name) <= 253 and all(_LABEL.match(label) for label in name.split("."))


def host_of(header: str) -> str | None:
    """The name in a Host header ("name", "name:port", "[v6]:port"); None when it is malformed."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or (header[end + 1 :] and not re.fullmatch(r":\d{1,5}", header[end + 1 :])):
            return None
        return normal(header[: end + 1])
    name, _, port = header.partition(":")
    if port and not port.isdigit():
        return None
    return normal(name) if name else None


@dataclass(frozen=True)
class HostPolicy:
    names: frozenset[str]
    any_ip: bool = False

    @classmethod
    def for_listening(cls, host: str, extra: Iterable[str] = ()) -> HostPolicy:
        """What a server listening on `host` answers to, plus the names in `extra`."""
        host = normal(host)
        names = {host, *(normal(e) for e in extra)}
        ip = _ip(host)
        wildcard = host in WILDCARDS
        if wildcard or host == "localhost" or (ip is not None and ip.is_loopback):
            names.update(LOOPBACK)
        return cls(frozenset(names - {""}), any_ip=wildcard)

    def allows(self, header: str | None) -> bool:
        name = host_of(header) if header else None
        if name is None:
            return False
        return name in self.names or (self.any_ip and _ip(name) is not None)


class HostCheck:
    """ASGI middleware: a request whose Host the policy does not allow gets a 403 JSON error."""

    def __init__(self, app, policy: HostPolicy):
        self.app = app
        self.policy = policy

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = dict(scope["headers"]).get(b"host")
        header = raw.decode("latin-1") if raw is not None else None
        if self.policy.allows(header):
            await self.app(scope, receive, send)
            return
        shown = (header or "")[:100]
        message = (
            f"this server does not answer to the host {shown!r}: start it with --allow-host NAME to add a name"
            if header
            else "send a Host header"
        )
        body = json.dumps({"error": message}).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store"),
        ]
        await send({"type": "http.response.start", "status": 403, "headers": headers})
        await send({"type": "http.response.body", "body": body})
