"""Every YAML example in the README is loaded by the code that reads such files, so the
documentation cannot drift from the loaders again; the compose file and LibreChat's config too."""

from __future__ import annotations

import re
import shutil
import subprocess
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from echo_stream.ads.inventory import load_inventory
from echo_stream.config_file import load_config
from echo_stream.ops.keys import load_keys
from echo_stream.ops.record import key_id

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCKS = [textwrap.dedent(b) for b in re.findall(r"```yaml\n(.*?)```", README, re.S)]


def test_the_readme_has_its_yaml_examples() -> None:
    kinds = {next(iter(yaml.safe_load(block))) for block in BLOCKS}
    assert kinds == {"endpoints", "models", "ads", "keys"}


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.split(":")[0].strip())
def test_every_yaml_example_loads(block: str, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(block)
    data = yaml.safe_load(block)
    if "ads" in data:
        ads = load_inventory(str(path))
        assert [ad.id for ad in ads] == [entry["id"] for entry in data["ads"]]
        assert all(ad.starts is not None and ad.ends is not None for ad in ads)
    elif "models" in data:
        assert [d.name for d in load_config(str(path))] == [m["name"] for m in data["models"]]
    elif "keys" in data:
        table = load_keys(str(path), {"TEAM_A_KEY": "sk-team-a-example"})
        assert table is not None and table.default is not None
        assert table.lookup(key_id("sk-team-a-example")).rpm == 60  # type: ignore[union-attr]
    else:
        _check_librechat(data)


def _check_librechat(config: dict[str, object]) -> None:
    (endpoint,) = config["endpoints"]["custom"]  # type: ignore[index]
    assert endpoint["baseURL"].endswith("/v1")
    host = endpoint["baseURL"].split("//")[1].split(":")[0]
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert host in services, f"the README points LibreChat at {host}, not a compose service"


def test_compose_wires_stock_librechat_to_the_gateway() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"echo-stream", "redis", "postgres", "librechat"} <= set(services)
    gateway = services["echo-stream"]["environment"]
    assert gateway["AD_FORMAT"] == "markdown" and gateway["REDIS_URL"].startswith("redis://redis")
    mount = services["librechat"]["volumes"][0]
    assert mount.startswith("./deploy/librechat.yaml:/app/librechat.yaml")
    shipped = yaml.safe_load((ROOT / "deploy" / "librechat.yaml").read_text())
    in_readme = next(yaml.safe_load(b) for b in BLOCKS if b.startswith("endpoints"))
    assert shipped["endpoints"] == in_readme["endpoints"]


def test_railway_drains_as_long_as_the_default_grace() -> None:
    from echo_stream.settings import Settings

    railway = (ROOT / "railway.toml").read_text()
    grace = Settings(_env_file=None).shutdown_grace_seconds  # type: ignore[call-arg]
    assert f"drainingSeconds = {int(grace)}" in railway


def _use_it_blocks(language: str) -> list[str]:
    section = README.split("## Use it", 1)[1].split("\n## ", 1)[0]
    return re.findall(rf"```{language}\n(.*?)```", section, re.S)


def test_the_sdk_example_runs_on_the_mock_with_no_key(
    server: Callable[..., str], capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.conftest import make_app

    (code,) = _use_it_blocks("python")
    base = server(make_app(openai_api_key=None, anthropic_api_key=None, google_api_key=None))
    exec(code.replace("http://localhost:8000", base), {})
    assert "Thanks for asking" in capsys.readouterr().out


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="needs curl and jq")
def test_the_curl_examples_run_on_the_mock(server: Callable[..., str]) -> None:
    from tests.conftest import make_app

    base = server(make_app(openai_api_key=None, anthropic_api_key=None, google_api_key=None))
    outputs = []
    for command in _use_it_blocks("bash"):
        result = subprocess.run(
            ["bash", "-c", command.replace("localhost:8000", base.removeprefix("http://"))],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    stream, text_only = outputs
    assert stream.rstrip().endswith("data: [DONE]")
    assert text_only.startswith("Thanks for asking") and "data:" not in text_only
