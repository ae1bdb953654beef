"""Install LiteLLM's proxy into its own virtualenv, for comparison runs.

``pip install 'litellm[proxy]==1.109.1'`` is tried first. That release pins a few dependencies
(seen: ``certifi>=2026.10.19``, ``litellm-proxy-extras==0.4.113``) newer than a registry may
serve yet; then the wheel's own requirement list is installed with just the unsatisfiable pins
relaxed to the newest version available, and LiteLLM itself with ``--no-deps``. The relaxed pins
are recorded and reported beside LiteLLM's numbers.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Unavailable

VERSION = "1.109.1"
SPEC = f"litellm[proxy]=={VERSION}"
_MISSING = re.compile(r"No matching distribution found for ([A-Za-z0-9_.\-]+)")
_MAX_RELAXATIONS = 8


@dataclass(frozen=True)
class LiteLLMInstall:
    """A ready LiteLLM virtualenv and any dependency pins that had to be relaxed."""

    venv: Path
    relaxed: tuple[str, ...]


def ensure_litellm(venv: Path, log_dir: Path) -> LiteLLMInstall:
    """Reuse or build the LiteLLM virtualenv; raise Unavailable with the reason on failure."""
    marker = venv / ".bench-installed"
    if marker.exists() and (venv / "bin" / "litellm").exists():
        lines = marker.read_text().splitlines()
        if lines and lines[0] == VERSION:
            return LiteLLMInstall(venv, tuple(lines[1:]))
    log_dir.mkdir(parents=True, exist_ok=True)
    log = log_dir / "litellm-install.log"
    print(f"installing {SPEC} into {venv} (log: {log}) ...", flush=True)
    if not (venv / "bin" / "python").exists():
        _run([sys.executable, "-m", "venv", str(venv)], log, "create the virtualenv")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    relaxed: tuple[str, ...] = ()
    if _try([*pip, SPEC], log) is not None:
        relaxed = _relaxed_install(venv, pip, log)
    _run([str(venv / "bin" / "litellm"), "--version"], log, "run the installed litellm")
    marker.write_text("\n".join((VERSION, *relaxed)) + "\n")
    return LiteLLMInstall(venv, relaxed)


def _relaxed_install(venv: Path, pip: list[str], log: Path) -> tuple[str, ...]:
    with tempfile.TemporaryDirectory() as tmp:
        _run(
            [*pip[:3], "download", "--no-deps", "-d", tmp, f"litellm=={VERSION}"],
            log,
            "download the litellm wheel",
        )
        wheel = next(Path(tmp).glob("litellm-*.whl"), None)
        if wheel is None:
            raise Unavailable("pip downloaded no litellm wheel")
        requirements = _requirements(wheel, extras=("", "proxy"))
        relaxed: list[str] = []
        for _ in range(_MAX_RELAXATIONS):
            req_file = Path(tmp) / "requirements.txt"
            req_file.write_text("\n".join(requirements.values()) + "\n")
            missing = _try([*pip, "-r", str(req_file)], log)
            if missing is None:
                break
            if missing not in requirements or requirements[missing] == missing:
                raise Unavailable(f"pip cannot install LiteLLM's dependency {missing} (see {log})")
            relaxed.append(f"{requirements[missing]} -> newest available")
            requirements[missing] = missing
        else:
            raise Unavailable(f"too many unsatisfiable LiteLLM dependencies (see {log})")
        _run([*pip, "--no-deps", str(wheel)], log, "install the litellm wheel")
    return tuple(relaxed)


def _requirements(wheel: Path, extras: tuple[str, ...]) -> dict[str, str]:
    """The wheel's requirements for ``extras`` on this interpreter, keyed by canonical name."""
    try:
        from packaging.requirements import Requirement
        from packaging.utils import canonicalize_name
    except ImportError as exc:
        raise Unavailable("the relaxed LiteLLM install needs 'packaging'") from exc
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode()
    wanted: dict[str, str] = {}
    for line in metadata.splitlines():
        if not line.startswith("Requires-Dist:"):
            continue
        requirement = Requirement(line.split(":", 1)[1].strip())
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras):
            requirement.marker = None
            wanted[canonicalize_name(requirement.name)] = str(requirement)
    return wanted


def _try(argv: list[str], log: Path) -> str | None:
    """Run a pip install; None on success, else the first package pip could not find."""
    result = _exec(argv, log)
    if result.returncode == 0:
        return None
    match = _MISSING.search(result.stdout)
    if match is None:
        tail = "\n".join(result.stdout.splitlines()[-5:])
        raise Unavailable(f"pip install failed (see {log}):\n{tail}")
    return re.sub(r"[-_.]+", "-", match.group(1)).lower()


def _run(argv: list[str], log: Path, what: str) -> None:
    result = _exec(argv, log)
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-5:])
        raise Unavailable(f"could not {what} (see {log}):\n{tail}")


def _exec(argv: list[str], log: Path) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=1200, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise Unavailable(f"{argv[0]} failed: {exc}") from exc
    with log.open("a") as out:
        out.write(f"$ {' '.join(argv)}\n{result.stdout}{result.stderr}\n")
    result.stdout += result.stderr
    return result
