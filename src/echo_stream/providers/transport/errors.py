"""Transport errors, and the one place they become the `EchoError`s a client sees.

    TransportError              the request failed at the transport level
    ├── NotSent                 provably never reached the provider (safe to send again)
    │   ├── ConnectFailed       could not connect: refused, DNS, TLS handshake, proxy refused
    │   ├── ConnectTimeout      connecting (or waiting for a pool slot) took too long
    │   └── StaleConnection     a pooled keep-alive connection was dead before any response byte
    ├── TransportTimeout        a timeout (ConnectTimeout is one too)
    │   └── ReadTimeout         read_timeout seconds without a byte after the request was sent
    ├── ConnectionBroken        reset, EOF before the body ended, unparsable response
    └── LimitExceeded           the upstream's head, an SSE line/event or a whole body was too big

Every client implementation raises only these; `to_echo_error` maps them for a provider.
"""

from __future__ import annotations

from echo_stream.errors import EchoError, UpstreamTimeout, UpstreamUnavailable


class TransportError(Exception):
    """Base: the request failed at the transport level."""


class NotSent(TransportError):
    """The request provably did not reach the provider: sending it again is safe."""


class TransportTimeout(TransportError):
    """A timeout: connecting, waiting for a pooled connection, or reading."""


class ConnectFailed(NotSent):
    """Could not connect (refused, DNS, TLS handshake, a proxy that refused the tunnel)."""


class ConnectTimeout(NotSent, TransportTimeout):
    """Connecting, or waiting for a free pooled connection, took longer than connect_timeout."""


class ReadTimeout(TransportTimeout):
    """No bytes for read_timeout seconds while waiting for headers or body: the request was
    sent, so it may have reached the provider."""


class ConnectionBroken(TransportError):
    """Reset, EOF before the body ended, or an unparsable response."""


class StaleConnection(NotSent, ConnectionBroken):
    """A reused keep-alive connection closed before any byte of the response arrived."""


class LimitExceeded(TransportError):
    """The upstream sent more than a configured limit allows (see `transport.base.Limits`)."""


def to_echo_error(provider: str, error: TransportError, *, mid_stream: bool = False) -> EchoError:
    """The error a client gets for a transport failure talking to `provider`."""
    if isinstance(error, LimitExceeded):
        return UpstreamUnavailable(f"{provider}: {error}", code="upstream_too_large")
    if isinstance(error, TransportTimeout):
        if mid_stream:
            return UpstreamTimeout(f"{provider} stopped sending mid-stream (read timeout)")
        return UpstreamTimeout(f"{provider} did not answer in time: {error}")
    if mid_stream:
        return UpstreamUnavailable(f"{provider} stream broke: {error}")
    if isinstance(error, ConnectFailed):
        return UpstreamUnavailable(f"could not reach {provider}: {error}")
    return UpstreamUnavailable(f"{provider} connection failed: {error}")
