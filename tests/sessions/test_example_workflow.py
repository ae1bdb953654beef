"""The importable n8n example is well formed and speaks the gateway's contract."""

from __future__ import annotations

import json
from pathlib import Path

from echo_stream.settings import Settings

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "n8n-session-stream.json"


def test_the_example_workflow_is_wired_as_the_readme_says() -> None:
    workflow = json.loads(EXAMPLE.read_text())
    nodes = {node["name"]: node for node in workflow["nodes"]}
    for source, links in workflow["connections"].items():
        assert source in nodes
        for branch in links["main"]:
            assert all(link["node"] in nodes for link in branch)
    types = [node["type"] for node in workflow["nodes"]]
    assert types == [
        "n8n-nodes-base.webhook",
        "n8n-nodes-base.jwt",
        "n8n-nodes-base.httpRequest",
        "n8n-nodes-base.respondToWebhook",
        "n8n-nodes-base.wait",
        "n8n-nodes-base.set",
    ]
    init = nodes["Init stream"]["parameters"]
    assert init["method"] == "POST" and init["url"].endswith("/init-stream")
    for field in ("n8nToken", "resumeUrl", "prompt", "userId", "chatId"):
        assert field + ":" in init["jsonBody"]
    wait = nodes["Wait for the answer"]["parameters"]
    assert wait["resume"] == "webhook" and wait["httpMethod"] == "POST"
    assert wait["responseMode"] == "onReceived"
    ttl = Settings.model_fields["stream_session_ttl"].default
    assert wait["resumeUnit"] == "seconds" and wait["resumeAmount"] > ttl
    assert "resumeUrl: $execution.resumeUrl" in nodes["JWT"]["parameters"]["claimsJson"]
