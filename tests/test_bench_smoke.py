"""Smoke tests for bench/: the fake upstream's fidelity and a ``--quick`` bench run.

The real openai, anthropic and google-genai SDKs must parse the fake upstream's streams, since
the bench's figures mean little if its upstream is not shaped like the real ones. The quick run
then drives direct and gateway cases end to end and checks every stream arrived whole; it makes
no timing assertions (timings on a shared machine are for the bench's report, not for CI).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
CHUNKS = 12
EXPECTED = "".join(f" tok{n}{'.' if n % 10 == 9 or n == CHUNKS - 1 else ''}" for n in range(CHUNKS))


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[str]:
    """A fake upstream process on a free loopback port; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_upstream", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("LISTENING "):
        proc.kill()
        pytest.fail(f"fake upstream did not start: {line}{proc.stdout.read()}")
    try:
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        proc.wait(10)


def test_openai_sdk_parses_fake_stream(fake_upstream: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{fake_upstream}/v1", api_key="bench", max_retries=0)
    stream = client.chat.completions.create(
        model=f"gpt-bench-c{CHUNKS}-d0",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish, usage = "", None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            text += choice.delta.content or ""
            finish = choice.finish_reason or finish
    assert text == EXPECTED
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == CHUNKS


def test_openai_sdk_parses_fake_completion(fake_upstream: str) -> None:
    import openai

    client = openai.OpenAI(base_url=f"{fake_upstream}/v1", api_key="bench", max_retries=0)
    completion = client.chat.completions.create(
        model=f"gpt-bench-c{CHUNKS}-d0",
        messages=[{"role": "user", "content": "hi"}],
        stream=False,
    )
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.content == EXPECTED
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.completion_tokens == CHUNKS


def test_anthropic_sdk_parses_fake_stream(fake_upstream: str) -> None:
    import anthropic

    client = anthropic.Anthropic(base_url=fake_upstream, api_key="bench", max_retries=0)
    with client.messages.stream(
        model=f"claude-bench-c{CHUNKS}-d0",
        max_tokens=64,
        messages=[{"role": "user", "content": "hi"}],
    ) as stream:
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
    assert text == EXPECTED
    assert message.stop_reason == "end_turn"
    assert message.usage.output_tokens == CHUNKS


@pytest.mark.parametrize("api_version", ["v1beta", "v1"])
def test_google_genai_sdk_parses_fake_stream(fake_upstream: str, api_version: str) -> None:
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key="bench",
        http_options=types.HttpOptions(
            base_url=fake_upstream,
            api_version=api_version,
            retry_options=types.HttpRetryOptions(attempts=1),
        ),
    )
    text, last = "", None
    for chunk in client.models.generate_content_stream(
        model=f"gemini-bench-c{CHUNKS}-d0", contents="hi"
    ):
        text += chunk.text or ""
        last = chunk
    assert text == EXPECTED
    assert last is not None and last.candidates
    assert last.candidates[0].finish_reason == types.FinishReason.STOP
    assert last.usage_metadata is not None
    assert last.usage_metadata.candidates_token_count == CHUNKS


def test_fake_upstream_paces_chunks_from_model_name(fake_upstream: str) -> None:
    import time

    import httpx

    started = time.perf_counter()
    with httpx.stream(
        "POST",
        f"{fake_upstream}/v1/chat/completions",
        json={"model": "gpt-bench-c3-d60", "stream": True, "messages": []},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["transfer-encoding"] == "chunked"
        body = response.read().decode()
    assert time.perf_counter() - started >= 0.11  # two 60 ms gaps between three chunks
    assert body.count('"content":" tok') == 3
    assert body.endswith("data: [DONE]\n\n")
    assert '"usage"' not in body  # only with stream_options.include_usage, as OpenAI does


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``python -m bench.run --quick`` (direct + gateway); its results document."""
    out = tmp_path_factory.mktemp("bench-results")
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    latest = out / "latest.json"
    assert latest.exists(), f"bench wrote no results:\n{run.stdout}\n{run.stderr}"
    doc: dict[str, Any] = json.loads(latest.read_text())
    doc["_output"] = run.stdout + run.stderr
    return doc


def _cases_of(doc: dict[str, Any], systems: tuple[str, ...]) -> list[str]:
    keys = {k for keys in doc["scenarios"].values() for k in keys}
    return sorted(k for k in keys if k.split("/")[2] in systems)


def _assert_clean(doc: dict[str, Any], keys: list[str]) -> None:
    assert keys
    for key in keys:
        assert key in doc["cases"], f"{key} was not measured:\n{doc['_output']}"
        result = doc["cases"][key]["result"]
        assert result["errors"] == {}, key
        assert result["lost_text_streams"] == 0, key
        assert result["chunk_count_mismatches"] == 0, key
        assert result["requests_ok"] == doc["cases"][key]["load"]["requests"], key
        assert (
            result["content_chunks"] >= result["requests_ok"] * result["expected_chunks_per_stream"]
        ), key


def test_quick_bench_direct_cases_are_clean(quick_run: dict[str, Any]) -> None:
    _assert_clean(quick_run, _cases_of(quick_run, ("direct",)))


def test_quick_bench_gateway_cases_are_clean(quick_run: dict[str, Any]) -> None:
    if "gateway" in quick_run["skipped"]:
        pytest.skip(f"echo_stream could not start: {quick_run['skipped']['gateway']}")
    _assert_clean(
        quick_run,
        _cases_of(
            quick_run, ("gateway", "gateway-ads", "gateway-2w", "gateway-lobe", "gateway-session")
        ),
    )
    no_loss = next(c for c in quick_run["checks"] if c["name"].startswith("no error"))
    assert no_loss["verdict"] == "PASS"


NEW_SCENARIOS = ("short", "nonstream", "storm", "session")
"""Issue 13's request-bound scenarios and the session face."""


def test_quick_bench_reports_every_new_scenario(quick_run: dict[str, Any]) -> None:
    if "gateway" in quick_run["skipped"]:
        pytest.skip(f"echo_stream could not start: {quick_run['skipped']['gateway']}")
    for name in NEW_SCENARIOS:
        keys = quick_run["scenarios"].get(name)
        assert keys, f"scenario {name} missing:\n{quick_run['_output']}"
        _assert_clean(quick_run, keys)
    checks = {c["name"] for c in quick_run["checks"]}
    for name in (
        "short-request rps per core vs nginx, short10",
        "storm: first-token p99",
        "ads on: storm first-token p99",
        "2 workers vs 1: short-request rps, short64",
        "session face: first event p50, 10 clients",
        "Lobe face: CPU per 1,000 chunks",
    ):
        assert name in checks, name


def _request_profile(*extra: str) -> list[str]:
    """The output lines of a short `bench.request_profile` run (which must succeed)."""
    command = [sys.executable, "-m", "bench.request_profile", "--requests", "40", "--rounds", "1"]
    done = subprocess.run(
        [*command, *extra], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.splitlines()


def test_request_profile_reports_the_cpu_per_request_and_the_areas() -> None:
    """`bench.request_profile` runs end to end (a few requests; no figure is asserted)."""
    lines = _request_profile()
    assert lines[0].startswith("CPU per request, 1-chunk stream, ads off:")
    shares = [
        line
        for line in lines
        if line.strip().endswith(("HTTP: pool, request, response parsing", "OpenAI chunk encoding"))
    ]
    assert len(shares) == 2 and all("%" in line for line in shares)


def test_request_profile_without_network_reports_the_cpu_per_request() -> None:
    """`--no-network` answers from memory and still serves every request (no figure asserted)."""
    lines = _request_profile("--no-network")
    assert lines[0].startswith("CPU per request, 1-chunk stream, ads off, no network:")


def test_quick_bench_splits_the_proxys_cpu_into_user_and_system(quick_run: dict[str, Any]) -> None:
    measured = [c for c in quick_run["cases"].values() if c.get("proxy_cpu_s") is not None]
    assert measured, "no case measured the proxy's CPU"
    for case in measured:
        user, system = case["proxy_user_s"], case["proxy_system_s"]
        assert user >= 0 and system >= 0
        assert user + system == pytest.approx(case["proxy_cpu_s"])


def test_quick_bench_records_the_gateways_interpreter(quick_run: dict[str, Any]) -> None:
    recorded = quick_run["machine"]["gateway_python"]
    assert recorded.startswith(f"{sys.executable}: {platform.python_version()} ")
    assert f"gateways ran on {recorded}" in quick_run["_output"]


def test_a_gateway_interpreter_that_cannot_run_stops_the_bench_first(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--gateway-python", str(tmp_path / "no")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode != 0
    assert f"--gateway-python {tmp_path / 'no'}: cannot run it" in run.stderr
    assert "fake upstream on" not in run.stdout  # nothing was started
