"""How to start each system under test: the fake upstream, nginx, the Echo gateway and LiteLLM.

Proxies run on core 0 (nginx and the gateway with one worker, LiteLLM with one worker); the fake
upstream and the load generator share core 1. Each start returns a ``System`` to measure and stop,
or raises ``Unavailable`` with the reason the report prints.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from bench.litellm_install import ensure_litellm
from bench.loadgen import Target
from bench.procs import (
    DRIVER_CORE,
    PROXY_CORE,
    Proc,
    StartError,
    Unavailable,
    free_port,
    spawn,
    wait_announced_port,
    wait_healthy,
)
from bench.wire import Format
from bench.workload import Route, StreamShape, expected_tokens, model_name

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"


@dataclass
class System:
    """A running system: where to send load, what format it speaks, which process to watch."""

    name: str
    port: int
    proc: Proc | None
    cores: str | None
    speaks_native: bool
    """True when clients send each route's own format (direct, nginx); False for OpenAI gateways."""
    notes: tuple[str, ...] = ()
    api_key: str = "bench"

    def stop(self) -> None:
        """Stop its processes (nothing to do for the direct system)."""
        if self.proc is not None:
            self.proc.stop()


def child_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a child: ours without proxy settings, loopback never proxied."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env.update(extra)
    return env


def start_fake_upstream(log_dir: Path) -> Proc:
    """The fake upstream on the driver core; returns once it listens."""
    proc = spawn(
        "fake-upstream",
        [sys.executable, "-m", "bench.fake_upstream", "--port", "0"],
        port=0,
        log_dir=log_dir,
        cores=DRIVER_CORE,
        env=child_env({}),
        cwd=REPO,
    )
    proc.port = wait_announced_port(proc, timeout=15)
    return proc


def start_system(
    name: str,
    upstream_port: int,
    log_dir: Path,
    models: Iterable[str],
    gateway_python: str = sys.executable,
) -> System:
    """Start ``name`` (one of scenarios.SYSTEMS) in front of the fake upstream; the gateways
    run on `gateway_python`."""
    if name == "direct":
        return System(name, upstream_port, None, None, speaks_native=True)
    if name == "nginx":
        return _start_nginx(upstream_port, log_dir)
    if name == "litellm":
        return _start_litellm(upstream_port, log_dir, models)
    workers, ads, cores = {
        "gateway": (1, "0", PROXY_CORE),
        "gateway-ads": (1, "1", PROXY_CORE),
        "gateway-store": (1, "0", PROXY_CORE),
        "gateway-2w": (2, "0", f"{PROXY_CORE},{DRIVER_CORE}"),
        "gateway-lobe": (1, "0", PROXY_CORE),
        "gateway-session": (1, "0", PROXY_CORE),
    }[name]
    extra = session_env(upstream_port) if name == "gateway-session" else None
    return start_gateway(
        name,
        upstream_port,
        log_dir,
        workers=workers,
        ad_rate=ads,
        cores=cores,
        extra_env=extra,
        python=gateway_python,
    )


SESSION_SECRET = "bench-session-secret-" + "0" * 48
"""The JWT secret of the session face (n8n's tokens are signed with it)."""


def session_env(upstream_port: int) -> dict[str, str]:
    """What the session face needs: its JWT secret, and the fake upstream allowed as n8n."""
    return {
        "JWT_SECRET": SESSION_SECRET,
        "N8N_ALLOWED_ORIGINS": f"http://127.0.0.1:{upstream_port}",
        "N8N_PRIVATE_HOSTS": "127.0.0.1",
    }


STORE_HEADERS = (("X-Conversation-Id", "new"),)
"""What the `gateway-store` system's clients send: every stream is stored (a new conversation)."""


def start_gateway(
    name: str,
    upstream_port: int,
    log_dir: Path,
    *,
    workers: int,
    ad_rate: str,
    cores: str,
    extra_env: dict[str, str] | None = None,
    src: Path = REPO / "src",
    python: str = sys.executable,
) -> System:
    """The gateway of `src` (this checkout's by default), run by `python`."""
    port = free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    data_dir = log_dir / f"{name}-data"  # a fresh SQLite conversation store for each run
    shutil.rmtree(data_dir, ignore_errors=True)
    env = child_env(
        {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            "WORKERS": str(workers),
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": f"{upstream}/v1",
            "ANTHROPIC_API_KEY": "bench",
            "ANTHROPIC_BASE_URL": upstream,
            "GOOGLE_API_KEY": "bench",
            "GOOGLE_BASE_URL": upstream,
            "AD_INJECTION_RATE": ad_rate,
            "LOG_LEVEL": "warning",
            "DATA_DIR": str(data_dir),
            # this checkout's gateway, whatever the venv's editable install points at (a venv
            # shared by several worktrees would otherwise run another tree's, even mid-edit)
            "PYTHONPATH": str(src),
            **(extra_env or {}),
        }
    )
    proc = spawn(
        name,
        [python, "-m", "echo_stream"],
        port=port,
        log_dir=log_dir,
        cores=cores,
        env=env,
        cwd=REPO,
    )
    try:
        wait_healthy(proc, "/health", timeout=30)
    except StartError as exc:
        raise Unavailable(f"echo_stream did not start: {exc}") from exc
    return System(name, port, proc, cores, speaks_native=False)


_NGINX_CONF = """\
{user}worker_processes 1;
worker_rlimit_nofile 65536;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
daemon off;
events {{ worker_connections 16384; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream fake {{ server 127.0.0.1:{upstream}; keepalive 256; }}
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 300s;
        }}
    }}
}}
"""


def _start_nginx(upstream_port: int, log_dir: Path) -> System:
    binary = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
    )
    if binary is None:
        raise Unavailable("nginx is not installed (apt-get install -y nginx-light)")
    port = free_port()
    home = WORK / "nginx"
    home.mkdir(parents=True, exist_ok=True)
    conf = home / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(_NGINX_CONF.format(user=user, dir=home, upstream=upstream_port, port=port))
    proc = spawn(
        "nginx",
        [binary, "-p", str(home), "-e", str(home / "error.log"), "-c", str(conf)],
        port=port,
        log_dir=log_dir,
        cores=PROXY_CORE,
        env=child_env({}),
    )
    try:
        wait_healthy(proc, "/health", timeout=15)
    except StartError as exc:
        raise Unavailable(f"nginx did not start: {exc}") from exc
    return System("nginx", port, proc, PROXY_CORE, speaks_native=True)


def litellm_config(upstream_port: int, models: Iterable[str]) -> dict[str, object]:
    """A LiteLLM proxy config routing each bench model to the fake upstream's native endpoint."""
    upstream = f"http://127.0.0.1:{upstream_port}"
    provider: dict[str, tuple[str, str]] = {
        "gpt": ("openai", f"{upstream}/v1"),
        "claude": ("anthropic", upstream),
        "gemini": ("gemini", f"{upstream}/v1beta"),
    }
    entries = []
    for model in sorted(set(models)):
        prefix, base = provider[model.split("-", 1)[0]]
        entries.append(
            {
                "model_name": model,
                "litellm_params": {
                    "model": f"{prefix}/{model}",
                    "api_base": base,
                    "api_key": "bench",
                },
            }
        )
    return {"model_list": entries, "litellm_settings": {"telemetry": False}, "general_settings": {}}


def _start_litellm(upstream_port: int, log_dir: Path, models: Iterable[str]) -> System:
    install = ensure_litellm(WORK / "litellm-venv", log_dir)  # raises Unavailable with the reason
    venv = install.venv
    port = free_port()
    config = WORK / "litellm-config.yaml"
    config.write_text(json.dumps(litellm_config(upstream_port, models), indent=2))  # JSON is YAML
    master_key = f"sk-bench-{secrets.token_hex(16)}"  # LiteLLM refuses to start without one
    env = child_env(
        {
            "LITELLM_MASTER_KEY": master_key,
            "LITELLM_LOG": "ERROR",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "LITELLM_TELEMETRY": "False",
            "DISABLE_ADMIN_UI": "True",
        }
    )
    argv = [
        str(venv / "bin" / "litellm"),
        "--config",
        str(config),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--num_workers",
        "1",
    ]
    proc = spawn("litellm", argv, port=port, log_dir=log_dir, cores=PROXY_CORE, env=env)
    try:
        wait_healthy(proc, "/health/liveliness", timeout=180)
    except StartError as exc:
        raise Unavailable(f"LiteLLM did not start: {exc}") from exc
    notes = tuple(f"LiteLLM installed with a relaxed pin: {r}" for r in install.relaxed)
    return System("litellm", port, proc, PROXY_CORE, False, notes=notes, api_key=master_key)


def route_format(system: System, route: Route, stream: bool = True) -> Format:
    """The format clients speak to ``system`` on ``route``."""
    if not stream:
        return "openai-json"  # non-streaming: the OpenAI route only, direct or through a proxy
    if system.name == "gateway-lobe":
        return "lobe"  # the same gateway, asked through Lobe's face
    return route if system.speaks_native else "openai"


def target_for(
    system: System,
    route: Route,
    shape: StreamShape,
    *,
    stream: bool = True,
    close: bool = False,
) -> Target:
    """What the load generator sends to ``system`` for answers of ``shape`` on ``route``.

    ``stream=False`` asks for one JSON answer; ``close`` adds `Connection: close`.
    """
    headers: tuple[tuple[str, str], ...] = STORE_HEADERS if system.name == "gateway-store" else ()
    if close:
        headers += (("Connection", "close"),)
    return Target(
        port=system.port,
        fmt=route_format(system, route, stream),
        model=model_name(route, shape),
        expected=tuple(expected_tokens(shape.chunks)),
        api_key=system.api_key,
        strict_chunks=system.name != "gateway-ads",  # the ad filter adds chunks of its own
        headers=headers,
    )
