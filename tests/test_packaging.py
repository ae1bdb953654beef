"""The Docker image's inputs stay consistent: the lock pins every runtime dependency, and the
Dockerfile builds the wheel with the script CI runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_lock_pins_every_runtime_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_name(r) for r in project["dependencies"]}
    pinned = {
        line.split("==")[0].strip().lower()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert wanted <= pinned, f"run `make lock`: {sorted(wanted - pinned)} missing"


def test_dockerfile_installs_the_lock_then_the_wheel_ci_builds() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY requirements.lock" in dockerfile
    assert dockerfile.index("-r requirements.lock") < dockerfile.index("COPY src")
    assert "sh scripts/build-wheel.sh" in dockerfile
    assert "sh scripts/build-wheel.sh dist" in (ROOT / "Makefile").read_text()
    assert re.search(r"^USER \d+:\d+$", dockerfile, re.M)
    assert re.search(r'^\s*CMD \["python", "-c"', dockerfile, re.M)  # exec-form health check
