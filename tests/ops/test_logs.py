"""Log lines: JSON or text, one formatter for ours and uvicorn's, secrets never printed."""

from __future__ import annotations

import io
import json
import logging
import logging.config
import re
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from echo_stream.ops.logs import (
    _CLUES,
    _PATTERNS,
    _SRE_FOLDS,
    JSONFormatter,
    Redactor,
    TextFormatter,
    _replace,
    log_config,
    log_request,
    skip_unused_record_fields,
)
from echo_stream.ops.record import RequestRecord


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /v1/ads/click/x?access_token=abc123XYZ&y=1", "abc123XYZ"),
        ("Authorization: Bearer my-client-key-123", "my-client-key-123"),
        (
            "calling https://api.example/v1 with sk-proj-AAAAbbbbCCCCdddd",
            "sk-proj-AAAAbbbbCCCCdddd",
        ),
        ('{"x-api-key": "ant-api03-secretvalue"}', "ant-api03-secretvalue"),
        ("url ...generateContent?key=AIzaSyDsecret&alt=sse", "AIzaSyDsecret"),
        ("the configured key is plainsecret42", "plainsecret42"),
    ],
)
def test_redactor_removes_secrets(text: str, secret: str) -> None:
    redacted = Redactor(["plainsecret42"])(text)
    assert secret not in redacted
    assert "[redacted]" in redacted


def test_redactor_leaves_ordinary_text_alone() -> None:
    text = "POST /v1/chat/completions 200 model=gpt-4o tokens=12"
    assert Redactor(["sk-known-key"])(text) == text


def test_every_letter_the_patterns_match_case_blind_folds_to_the_clue_letter() -> None:
    # The clue check skips `_PATTERNS` on a line with no clue; it is sound only if every
    # character `re.IGNORECASE` lets stand for a clue's letter folds to that very letter.
    everything = "".join(map(chr, range(sys.maxunicode + 1))).replace("\n", "")
    letters = sorted({c for clue in _CLUES for c in clue if c.isalpha()})
    for letter in letters:
        for found in set(re.findall(letter, everything, re.IGNORECASE)):
            assert found.translate(_SRE_FOLDS).casefold() == letter, (letter, hex(ord(found)))


def _redacted_the_long_way(secrets: list[str], text: str) -> str:
    values = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    if values:
        text = re.sub("|".join(re.escape(v) for v in values), "[redacted]", text)
    return _PATTERNS.sub(_replace, text)


_PIECES = st.sampled_from(
    [
        "key=", "KEY=", "token=", "Bearer ", "bearer\t", "api_key", "Api-Key", "apikey: ",
        "x-goog-api-key=", "sk-", "SK-", "ak-", "gk-", "access_token=", "?", "&", "=", ":",
        '"', "'", " ", "/v1/chat", "key_id=", "tokens=", "abcdefgh", "12345678", "AIzaSy",
        "\u0131", "\u0130", "\u017f", "\u212a", "\u00df", "\ufb05", "my-secret-1",
    ]
)  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "x?key=v1", "x&TOKEN=v1", "access_token=v1", "a Bearer abcdefgh", "apikey: v1",
        "API_KEY=v1", "x-api-key: v1", "sk-abcdefgh", "AK-abcdefgh", "gk-abcdefgh",
        "ap\u0131_key: v1", "\u017fk-abcdefgh", "x?\u212aey=v1",
    ],
)  # fmt: skip
def test_each_kind_of_credential_is_still_found(text: str) -> None:
    assert "[redacted]" in Redactor()(text) == _redacted_the_long_way([], text)


@given(
    st.lists(_PIECES | st.text(max_size=4), max_size=14).map("".join),
    st.lists(st.sampled_from(["my-secret-1", "sk-known-key", "abcd", "xyz"]), max_size=3),
)
def test_redaction_with_its_shortcuts_equals_the_full_search(text: str, secrets: list[str]) -> None:
    assert Redactor(secrets)(text) == _redacted_the_long_way(secrets, text)


def _record() -> RequestRecord:
    record = RequestRecord("req_1", "POST", "/v1/chat/completions", route="/v1/chat/completions")
    record.model, record.provider, record.status, record.streamed = "gpt-4o", "openai", 200, True
    record.input_tokens, record.output_tokens, record.ttft_s = 5, 7, 0.0123
    record.ad, record.ad_reason = "none", "rate"
    record.retries.append("status_503")
    return record


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"test.logs.{id(stream)}")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


def test_json_request_line_has_the_fields() -> None:
    logger, stream = _capture(JSONFormatter())
    log_request(logger, _record())
    line = json.loads(stream.getvalue())
    assert line["level"] == "info" and line["request_id"] == "req_1"
    assert line["model"] == "gpt-4o" and line["provider"] == "openai" and line["status"] == 200
    assert line["streamed"] is True and line["ttft_ms"] == 12.3
    assert line["input_tokens"] == 5 and line["output_tokens"] == 7 and line["retries"] == 1
    assert line["ad"] == "none" and line["ad_reason"] == "rate"
    assert "user" not in line and "error_type" not in line  # absent facts are left out


def test_text_line_is_one_line_of_key_values() -> None:
    logger, stream = _capture(TextFormatter())
    log_request(logger, _record())
    text = stream.getvalue().strip()
    assert "\n" not in text
    assert "POST /v1/chat/completions 200" in text and "model=gpt-4o" in text


def test_exceptions_and_messages_are_redacted_in_both_formats() -> None:
    for formatter in (
        JSONFormatter(["sk-live-provider-key"]),
        TextFormatter(["sk-live-provider-key"]),
    ):
        logger, stream = _capture(formatter)
        try:
            raise RuntimeError("upstream refused key sk-live-provider-key")
        except RuntimeError:
            logger.exception("call failed for ?access_token=tok123")
        output = stream.getvalue()
        assert "sk-live-provider-key" not in output and "tok123" not in output
        assert "RuntimeError" in output


def test_uvicorn_lines_use_the_same_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    logging.config.dictConfig(log_config("json", "info", ["hunter2-secret"]))
    try:
        logging.getLogger("uvicorn.error").info("Uvicorn running with hunter2-secret")
        logging.getLogger("echo_stream.request").info(
            "GET /health 200", extra={"fields": {"status": 200}}
        )
        lines = [json.loads(line) for line in capsys.readouterr().err.strip().splitlines()]
    finally:
        logging.config.dictConfig({"version": 1, "disable_existing_loggers": False})
        for name in ("uvicorn", "uvicorn.error", "echo_stream"):
            logging.getLogger(name).handlers = []
            logging.getLogger(name).propagate = True
    assert [line["logger"] for line in lines] == ["uvicorn.error", "echo_stream.request"]
    assert lines[0]["message"] == "Uvicorn running with [redacted]"
    assert lines[1]["status"] == 200


def test_json_lines_stay_valid_json_after_redaction() -> None:
    logger, stream = _capture(JSONFormatter(["s3cret-value"]))
    logger.info('try: curl -H "Authorization: Bearer $KEY" -d \'{"a": "s3cret-value"}\'')
    line = json.loads(stream.getvalue())
    assert "s3cret-value" not in line["message"] and "[redacted]" in line["message"]


def test_json_request_fields_are_redacted_where_a_secret_is() -> None:
    logger, stream = _capture(JSONFormatter(["known-client-key"]))
    record = _record()
    record.path = "/v1beta/models?key=AIzaSyDsecret&alt=sse"
    record.user = "known-client-key"
    log_request(logger, record)
    line = json.loads(stream.getvalue())
    assert line["path"] == "/v1beta/models?key=[redacted]&alt=sse"
    assert line["user"] == "[redacted]"
    assert line["model"] == "gpt-4o" and line["request_id"] == "req_1"  # the rest untouched


def test_records_skip_what_the_formatters_never_print() -> None:
    from tests.conftest import make_app

    switches = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")
    saved = {name: getattr(logging, name) for name in switches}
    try:
        logging.logThreads = True
        make_app()  # each worker builds its app, and with it sets the switches
        assert logging.logThreads is False and logging._srcfile is None
        skip_unused_record_fields()  # (idempotent)
        lines = []
        for formatter in (JSONFormatter(), TextFormatter()):
            logger, stream = _capture(formatter)
            log_request(logger, _record())
            lines.append(stream.getvalue())
        logger, _ = _capture(TextFormatter())
        records: list[logging.LogRecord] = []
        logger.addFilter(lambda record: records.append(record) or True)
        logger.info("a line")
        [record] = records
        assert record.lineno == 0 and record.funcName == "(unknown function)"  # no stack walk
        assert record.thread is None and record.process is None and record.processName is None
        assert json.loads(lines[0])["model"] == "gpt-4o"  # the lines themselves are unchanged
        assert "POST /v1/chat/completions 200" in lines[1] and "model=gpt-4o" in lines[1]
    finally:
        for name, value in saved.items():
            setattr(logging, name, value)
