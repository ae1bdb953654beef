"""Start the gateway (as `python -m echo_stream` does) with a chosen upstream client:
`python -m bench.gateway_client fastclient|aiohttp`. Used by `bench.transport_compare` only;
production always uses `providers.http.make_client`."""

from __future__ import annotations

import sys

import echo_stream.routing
from echo_stream.__main__ import main as gateway_main


def main() -> None:
    """Swap the client factory the router uses, then serve."""
    choice = sys.argv[1] if len(sys.argv) > 1 else "fastclient"
    if choice == "aiohttp":
        from bench.aiohttp_client import make_aiohttp_client

        echo_stream.routing.make_client = make_aiohttp_client  # type: ignore[assignment]
    elif choice != "fastclient":
        raise SystemExit(f"unknown client {choice!r}: fastclient or aiohttp")
    sys.argv = sys.argv[:1]
    gateway_main()


if __name__ == "__main__":
    main()
