"""The callback to n8n's Wait node: where it may go, and delivering it once, with retries.

`resumeUrl` is checked twice: at `/init-stream` (a 400 before anything is stored) and again
just before each delivery attempt (names can change what they resolve to). It must be on an
allowlisted origin (`N8N_ALLOWED_ORIGINS`: scheme, host, port), have the path of an n8n waiting
webhook (`[/base]/webhook-waiting/<execution id>[/<suffix>]`, an optional query such as n8n's
`signature`), and its host must not resolve to a loopback, link-local, metadata or unspecified
address unless listed in `N8N_PRIVATE_HOSTS`. Private networks (an n8n container on a compose
network) are fine. Delivery follows no redirect, has tight timeouts, reads at most a few KiB of
the reply and discards it, and retries network errors, 5xx and n8n's 409 "is running already"
(the workflow has not reached its Wait node yet) with backoff for `N8N_CALLBACK_RETRY_SECONDS`.
The check and the HTTP client share one lookup of the name (`transport.resolve.AddressCache`,
kept 10 s; the check runs just before each attempt), so the connection goes to an address the
check passed: a name cannot pass with one address and be connected to another (DNS rebinding),
short of its entry expiring in the milliseconds between the check and the connect.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import orjson

from echo_stream.errors import InvalidRequest
from echo_stream.providers.transport.errors import TransportError
from echo_stream.providers.transport.fastclient import FastClient
from echo_stream.providers.transport.resolve import AddressCache
from echo_stream.settings import Settings, split_list

log = logging.getLogger(__name__)

_WAIT_PATH = re.compile(
    r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/webhook-waiting/[0-9]{1,20}"
    r"(?:/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)*/?"
)
_METADATA = {
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
}
_QUERY = re.compile(r"[A-Za-z0-9._~%&=+-]*")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REPLY_CAP = 4096
_RUNNING = "is running already"


def _origin(url: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


@dataclass(frozen=True, slots=True)
class CallbackPolicy:
    """Where callbacks may go and how they are sent, from the settings."""

    origins: frozenset[tuple[str, str, int]]
    private_hosts: frozenset[str]
    header: str = "X-Echo-Callback-Secret"
    secret: str | None = None
    timeout: float = 5.0
    retry_seconds: float = 30.0
    first_backoff: float = 0.25
    addresses: AddressCache = field(default_factory=AddressCache, compare=False)
    """The lookups the address check and the callback client share."""

    @classmethod
    def from_settings(cls, settings: Settings) -> CallbackPolicy:
        """The policy `N8N_*` describe; an unparsable origin is a configuration error."""
        origins = set()
        for item in split_list(settings.n8n_allowed_origins):
            origin = _origin(item)
            if origin is None:
                raise ValueError(f"N8N_ALLOWED_ORIGINS: not an http(s) origin: {item!r}")
            origins.add(origin)
        secret = settings.n8n_callback_secret
        return cls(
            origins=frozenset(origins),
            private_hosts=frozenset(h.lower() for h in split_list(settings.n8n_private_hosts)),
            header=settings.n8n_callback_header,
            secret=secret.get_secret_value() if secret else None,
            timeout=settings.n8n_callback_timeout,
            retry_seconds=settings.n8n_callback_retry_seconds,
        )

    def check_shape(self, url: str, bound: str | None) -> None:
        """Raise `InvalidRequest` unless `url` is an allowlisted n8n waiting-webhook URL."""
        if bound is not None and bound != url:
            raise InvalidRequest(
                "resumeUrl differs from the one the token was issued for", param="resumeUrl"
            )
        if _origin(url) is None:
            raise InvalidRequest(
                "resumeUrl is not an http(s) URL on an allowed n8n origin", param="resumeUrl"
            )
        parts = urlsplit(url)
        if parts.username is not None or parts.password is not None or parts.fragment:
            raise InvalidRequest(
                "resumeUrl must not carry credentials or a fragment", param="resumeUrl"
            )
        if _origin(url) not in self.origins:
            raise InvalidRequest("resumeUrl is not on an allowed n8n origin", param="resumeUrl")
        if not _QUERY.fullmatch(parts.query):
            raise InvalidRequest(
                "resumeUrl has characters its query cannot carry", param="resumeUrl"
            )
        if not _WAIT_PATH.fullmatch(parts.path) or any(
            segment in (".", "..") for segment in parts.path.split("/")
        ):
            raise InvalidRequest(
                "resumeUrl is not an n8n waiting-webhook URL (.../webhook-waiting/<execution id>)",
                param="resumeUrl",
            )

    async def check_address(self, url: str) -> None:
        """Raise `InvalidRequest` when the host resolves somewhere a callback must never go."""
        host = (urlsplit(url).hostname or "").lower()
        if host in self.private_hosts:
            return
        origin = _origin(url)
        try:
            resolved = await self.addresses.resolve(host, origin[2] if origin else 80)
        except OSError as exc:
            raise InvalidRequest(
                f"resumeUrl host does not resolve: {exc}", param="resumeUrl"
            ) from None
        for _family, ip, _port in resolved:
            address = ipaddress.ip_address(ip.split("%")[0])
            # ::ffff:127.0.0.1 is 127.0.0.1 on the wire: judge the IPv4 address it carries.
            address = getattr(address, "ipv4_mapped", None) or address
            if (
                address in _METADATA
                or address.is_loopback
                or address.is_link_local
                or address.is_unspecified
                or address.is_multicast
            ):
                raise InvalidRequest(
                    "resumeUrl resolves to a loopback, link-local or metadata address",
                    param="resumeUrl",
                )


async def _attempt(
    client: FastClient, url: str, body: bytes, headers: dict[str, str], seconds: float
) -> tuple[int, str]:
    """One POST; the status and the start of the reply (the rest is never read)."""
    # The client bounds each read; this bounds the whole exchange (a reply that trickles).
    async with asyncio.timeout(seconds * 2):
        response = await client.post(url, body, headers)
        try:
            head = await response.read(_REPLY_CAP)
        finally:
            await response.aclose()
    return response.status, head.decode(errors="replace")


def callback_client(policy: CallbackPolicy) -> FastClient:
    """The HTTP client callbacks share: it never follows a redirect, reads no proxy settings,
    and times out after `N8N_CALLBACK_TIMEOUT` of silence (connect at most 3 s).

    One per process, on the gateway's lean HTTP/1.1 client: a callback per session is part of
    the session face's cost.
    """
    return FastClient(
        connect_timeout=min(policy.timeout, 3.0),
        read_timeout=policy.timeout,
        max_connections=100,
        max_idle_per_host=10,
        proxies={},  # straight to the host the SSRF guard checked, never through a proxy
        addresses=policy.addresses,  # ... at an address it checked
    )


async def deliver(
    policy: CallbackPolicy, client: FastClient, url: str, payload: dict[str, Any]
) -> str:
    """POST `payload` to `url`, retrying what n8n asks to retry; returns how it ended."""
    headers = {"User-Agent": "echo-stream-callback", "Content-Type": "application/json"}
    if policy.secret:
        headers[policy.header] = policy.secret
    loop = asyncio.get_running_loop()
    deadline = loop.time() + policy.retry_seconds
    backoff = policy.first_backoff
    outcome = "not sent"
    body = orjson.dumps(payload)
    while True:
        try:
            await policy.check_address(url)
            status, reply = await _attempt(client, url, body, headers, policy.timeout)
        except InvalidRequest as exc:
            return f"refused: {exc.message}"
        except (TransportError, TimeoutError, OSError) as exc:
            outcome, retry = f"network error: {type(exc).__name__}", True
        else:
            outcome = f"HTTP {status}"
            if 200 <= status < 300:
                return "delivered"
            retry = status >= 500 or (status == 409 and _RUNNING in reply)
        if not retry or loop.time() + backoff > deadline:
            log.warning("session callback gave up: %s", outcome)
            return outcome
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, 4.0)
