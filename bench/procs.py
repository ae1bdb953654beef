"""Start, pin, watch and stop the processes a bench run needs; read their CPU time and memory.

Every process is started in its own session so that stopping it also stops the workers it
forked (uvicorn's, nginx's), by that session's process-group id and nothing broader.
CPU time and RSS are summed over the whole process tree, read from /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROXY_CORE = "0"
DRIVER_CORE = "1"


def run_async(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on uvloop (on asyncio's own loop when uvloop is missing)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        return asyncio.run(main)
    return uvloop.run(main)


def raise_nofile_limit() -> int:
    """Raise this process's open-file limit to its hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def cores_exist(cores: str) -> bool:
    """Whether every core in a taskset-style list like "0,1" exists on this machine."""
    return max(int(c) for c in cores.split(",")) < (os.cpu_count() or 1)


def pin_self(cores: str) -> bool:
    """Pin this process to ``cores`` (e.g. "1"); False when the machine has too few."""
    if not cores_exist(cores):
        return False
    try:
        os.sched_setaffinity(0, {int(c) for c in cores.split(",")})
    except OSError:
        return False
    return True


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    pids = [pid]
    for current in pids:
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids.extend(int(c) for c in children.read_text().split())
    return pids


def cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of ``pid``'s tree, each including reaped children."""
    user = system = 0
    for member in tree_pids(pid):
        try:
            stat = Path(f"/proc/{member}/stat").read_text()
        except OSError:
            continue
        utime, stime, cutime, cstime = (int(f) for f in stat[stat.rindex(")") + 2 :].split()[11:15])
        user += utime + cutime
        system += stime + cstime
    return user / CLOCK_TICKS, system / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of ``pid``'s tree, including reaped children."""
    return sum(cpu_times(pid))


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid``'s tree, from VmRSS."""
    total = 0
    for member in tree_pids(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
                break
    return total


@dataclass
class RssSampler:
    """Samples a process tree's RSS every ``interval`` seconds while running; keeps the peak."""

    pid: int
    interval: float = 0.05
    peak: int = 0
    samples: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        """Begin sampling on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> int:
        """Stop sampling; return the peak RSS in bytes."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._sample()
        return self.peak

    def _sample(self) -> None:
        self.peak = max(self.peak, rss_bytes(self.pid))
        self.samples += 1

    async def _run(self) -> None:
        while True:
            self._sample()
            await asyncio.sleep(self.interval)


class Unavailable(Exception):
    """A system cannot be measured here; the message says why, for the report."""


class StartError(RuntimeError):
    """A process under test did not come up; the message says why, with its log's tail."""


@dataclass
class Proc:
    """A started process, its log, and how to reach it."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int

    @property
    def pid(self) -> int:
        """The root process id (taskset execs, so this is the program itself)."""
        return self.popen.pid

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the process's output."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the process and everything in its session: TERM, then KILL."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(2)


def spawn(
    name: str,
    argv: Sequence[str],
    *,
    port: int,
    log_dir: Path,
    cores: str | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Proc:
    """Start ``argv`` pinned to ``cores`` with taskset (unpinned when None), output to a log."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    command = list(argv)
    if cores is not None and cores_exist(cores) and shutil.which("taskset"):
        command = ["taskset", "-c", cores, *command]
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Proc(name, popen, log_path, port)


def wait_healthy(proc: Proc, path: str, timeout: float) -> None:
    """Poll ``GET http://127.0.0.1:<port><path>`` until 200; StartError on exit or timeout."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with httpx.Client(timeout=2.0, trust_env=False) as client:
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise StartError(
                    f"{proc.name} exited with {proc.popen.returncode}:\n{proc.log_tail()}"
                )
            try:
                response = client.get(f"http://127.0.0.1:{proc.port}{path}")
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(0.1)
    proc.stop()
    raise StartError(f"{proc.name} not healthy after {timeout:.0f} s ({last}):\n{proc.log_tail()}")


def wait_announced_port(proc: Proc, timeout: float) -> int:
    """Wait for a ``LISTENING <port>`` line in the process's log (the fake upstream's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log_tail(5).splitlines():
            if line.startswith("LISTENING "):
                return int(line.split()[1])
        if proc.popen.poll() is not None:
            break
        time.sleep(0.05)
    proc.stop()
    raise StartError(f"{proc.name} did not announce its port:\n{proc.log_tail()}")
