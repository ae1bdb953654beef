"""Profile the gateway under one bench load with py-spy, and list its hot spots.

    .venv/bin/python -m bench.profile                       # throughput load, OpenAI route
    .venv/bin/python -m bench.profile --load ttft10 --route gemini --system gateway-ads

py-spy (installed on first use into bench/.work/tools-venv) samples the gateway from core 1 while
the load runs; the collapsed stacks (or, with --speedscope, a file for speedscope.app) and the
summary land in bench/.work/profiles/.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.loadgen import run_load
from bench.procs import DRIVER_CORE, Unavailable, pin_self, raise_nofile_limit, run_async
from bench.run import warm_up
from bench.scenarios import loads_by_name
from bench.systems import WORK, start_fake_upstream, start_system, target_for

TOOLS = WORK / "tools-venv"


def ensure_py_spy() -> Path:
    """py-spy from PATH or the bench's tools virtualenv, installing it there if needed."""
    binary = TOOLS / "bin" / "py-spy"
    if binary.exists():
        return binary
    print(f"installing py-spy into {TOOLS} ...", flush=True)
    steps = [
        [sys.executable, "-m", "venv", str(TOOLS)],
        [str(TOOLS / "bin" / "python"), "-m", "pip", "install", "-q", "py-spy"],
    ]
    for step in steps:
        if subprocess.run(step, capture_output=True, check=False).returncode != 0:
            raise Unavailable(f"could not install py-spy ({' '.join(step)})")
    return binary


def hot_spots(collapsed: Path, top: int) -> str:
    """Self and inclusive sample shares per function, from py-spy's raw collapsed stacks."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        frames = [_short(f) for f in stack.split(";")]
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return "no samples"
    lines = [f"{total} samples", "", f"top {top} by self time:"]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in own.most_common(top)]
    lines += ["", f"top {top} by inclusive time (echo_stream frames):"]
    ours = [(f, n) for f, n in inclusive.most_common() if "echo_stream" in f]
    lines += [f"  {100 * n / total:5.1f}%  {f}" for f, n in ours[:top]]
    return "\n".join(lines)


def _short(frame: str) -> str:
    # py-spy frames look like "function (path/to/module.py:123)"; keep the path from site-packages
    # or src on, and drop the line number so one function's samples add up
    name, _, where = frame.partition(" (")
    path = where.rstrip(")").rsplit(":", 1)[0]
    for marker in ("site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{name} ({path})"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument(
        "--load", default="throughput", help="a bench.run load: ttft1, short10, json64, storm, ..."
    )
    parser.add_argument("--route", default="openai", choices=("openai", "anthropic", "gemini"))
    parser.add_argument("--system", default="gateway", help="gateway, gateway-ads or gateway-2w")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--native", action="store_true", help="include C frames (py-spy --native)")
    parser.add_argument("--speedscope", action="store_true", help="write speedscope JSON instead")
    args = parser.parse_args(argv)
    raise_nofile_limit()
    pin_self(DRIVER_CORE)
    loads = loads_by_name()
    if args.load not in loads:
        parser.error(f"--load must be one of {', '.join(loads)}")
    spec = loads[args.load]
    py_spy = ensure_py_spy()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out_dir = WORK / "profiles"
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / f"{stamp}-{args.system}-{spec.name}-{args.route}"
    upstream = start_fake_upstream(WORK / "logs" / f"profile-{stamp}")
    try:
        system = start_system(args.system, upstream.port, WORK / "logs" / f"profile-{stamp}", ())
        try:
            run_async(warm_up(system, {args.route}, upstream))
            assert system.proc is not None
            close = spec.fresh_connections
            target = target_for(system, args.route, spec.shape, stream=spec.stream, close=close)
            fmt, suffix = (
                ("speedscope", ".speedscope.json") if args.speedscope else ("raw", ".collapsed.txt")
            )
            path = Path(f"{base}{suffix}")
            command = [
                "taskset",
                "-c",
                DRIVER_CORE,
                str(py_spy),
                "record",
                "-p",
                str(system.proc.pid),
                "-r",
                str(args.rate),
                "-f",
                fmt,
                "-o",
                str(path),
                # Native frames can only be read from a paused process (slower, but py-spy
                # refuses --native with --nonblocking).
                *(["--native"] if args.native else ["--nonblocking"]),
            ]
            errors = Path(f"{base}.py-spy.log")
            with errors.open("wb") as log:
                spy = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
            time.sleep(0.5)
            result = run_async(run_load(target, spec.load()))
            spy.send_signal(signal.SIGINT)
            spy.wait(30)
            if not path.exists():
                raise Unavailable(f"py-spy wrote no samples: {errors.read_text().strip()[-500:]}")
            print(
                f"{result.requests_ok}/{result.requests_sent} streams ok, "
                f"{result.chunks_per_s:,.0f} chunks/s; samples -> {path}",
                flush=True,
            )
        finally:
            system.stop()
    finally:
        upstream.stop()
    if not args.speedscope:
        text = hot_spots(path, args.top)
        Path(f"{base}.summary.txt").write_text(text + "\n")
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
