"""`python -m echo_stream` / `echo-stream`: check the configuration, then serve with uvicorn."""

from __future__ import annotations

import logging.config
import math
import sys
from collections.abc import Sequence

import uvicorn
from pydantic import ValidationError

from echo_stream import cli
from echo_stream.ads.inventory import InventoryError
from echo_stream.app import build_state, create_app
from echo_stream.config_file import ConfigError
from echo_stream.http_protocol import CoalescingHttpToolsProtocol
from echo_stream.ops.logs import log_config
from echo_stream.settings import Settings


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the flags, validate the configuration, print the banner, then serve."""
    args = cli.parse_args(sys.argv[1:] if argv is None else argv)
    cli.apply_flags(args)
    try:
        settings = Settings()
    except (ValidationError, ValueError) as exc:
        cli.fail(str(exc))
        return
    cli.prepare_metrics_dir(settings.workers)  # before any metric is created
    try:
        _run(settings, check=args.check)
    finally:
        cli.remove_metrics_dir()


def _run(settings: Settings, *, check: bool) -> None:
    try:
        state = build_state(settings)  # fail fast, with a clear message, before any worker
    except (ConfigError, InventoryError, ValidationError, ValueError) as exc:
        cli.fail(str(exc))
        return
    if check:
        endpoints = cli.endpoints(create_app(settings, state))
        print("\n".join(cli.check_report(settings, state, endpoints)))
        print("configuration ok")
        return
    logging_config = log_config(
        settings.log_format, settings.log_level, cli.settings_secrets(settings)
    )
    logging.config.dictConfig(logging_config)
    cli.log.info("%s", cli.banner(settings, state))
    if warning := cli.open_network_warning(settings):
        cli.log.warning("%s\n%s\n%s", "!" * 72, warning, "!" * 72)
    uvicorn.run(
        "echo_stream.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level=settings.log_level,
        log_config=logging_config,
        access_log=False,  # the one line per request replaces uvicorn's access line
        loop="uvloop",
        http=CoalescingHttpToolsProtocol,
        timeout_graceful_shutdown=max(math.ceil(settings.shutdown_grace_seconds), 1),
    )


if __name__ == "__main__":
    main()
