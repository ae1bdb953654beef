"""The chat page in a real headless Chromium against a live gateway on the mock provider."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.browser import SCREENSHOTS
from tests.conftest import make_app
from tests.live import serve
from tests.upstreams import FakeUpstream, Reply, openai_stream, text_reply
from tests.web.helpers import TIMEOUT_MS, last_answer, open_chat, send, wait_answer


def test_an_answer_streams_in_with_usage_and_speed_under_it(
    page: Any, server: Callable[..., str]
) -> None:
    base = server(make_app(mock_delay_ms=40))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: errors.append(m.text) if "Content Security" in m.text else None)
    open_chat(page, base)
    assert page.locator("#model").input_value() == "echo-mock"

    page.fill("#prompt", "first line")
    page.press("#prompt", "Shift+Enter")
    page.type("#prompt", "second line")
    assert page.locator("#prompt").input_value() == "first line\nsecond line"
    assert page.locator(".msg").count() == 0  # Shift+Enter did not send
    # The typing indicator shows only until the first token (40 ms here), too briefly to poll
    # for on a loaded machine: a MutationObserver notes it as the answer is added to the page.
    page.evaluate(
        """() => new MutationObserver((_, observer) => {
             const typing = document.querySelector('.msg.assistant .typing');
             if (typing && !typing.hidden) { window.sawTyping = true; observer.disconnect(); }
           }).observe(document.body, {childList: true, subtree: true})"""
    )
    page.press("#prompt", "Enter")

    answer = last_answer(page)
    page.wait_for_function("() => window.sawTyping === true", timeout=TIMEOUT_MS)
    # Caught mid-stream: some text rendered, the answer still busy, Stop offered.
    page.wait_for_function(
        "() => { const a = document.querySelector('.msg.assistant');"
        " return a.dataset.state === 'streaming' && a.querySelector('.answer').textContent.length > 20; }",
        timeout=TIMEOUT_MS,
    )
    assert page.locator("#stop").is_visible() and not page.locator("#send").is_visible()
    assert answer.locator(".answer").get_attribute("aria-live") == "polite"
    assert answer.locator(".answer").get_attribute("aria-busy") == "true"

    wait_answer(page)
    assert page.locator(".msg.user .bubble").inner_text() == "first line\nsecond line"
    assert "Thanks for asking about" in answer.locator(".answer").inner_text()
    stats = answer.locator(".stats").inner_text()
    assert (
        "tokens in" in stats and "out" in stats and "tokens/s" in stats and "first token" in stats
    )
    assert answer.locator(".answer").get_attribute("aria-busy") == "false"
    assert answer.locator("pre code.hljs").count() == 1  # the mock's code block, highlighted
    assert answer.locator("pre .copy-code").count() == 1
    assert page.locator("#send").is_visible() and not page.locator("#stop").is_visible()
    assert errors == []


def test_stop_keeps_the_partial_answer_and_the_server_cancels_upstream(page: Any) -> None:
    with serve(make_app(mock_delay_ms=80)) as live:
        open_chat(page, live.url)
        baseline = live.task_count()
        send(page, "a long answer please")
        page.wait_for_function(
            "() => document.querySelector('.msg.assistant .answer').textContent.length > 30",
            timeout=TIMEOUT_MS,
        )
        page.click("#stop")
        answer = wait_answer(page, "stopped")
        partial = answer.locator(".answer").inner_text()
        assert partial.startswith("Thanks for asking")
        assert "handy for demos and tests" not in partial  # it really stopped mid-answer
        assert answer.locator(".status").inner_text() == "Stopped"
        assert page.locator("#banner").is_hidden()
        deadline = time.monotonic() + 10
        while live.task_count() > baseline and time.monotonic() < deadline:
            time.sleep(0.05)
        assert live.task_count() <= baseline, "the gateway kept streaming after the stop"
        # The partial answer stays and the conversation goes on.
        send(page, "and another")
        wait_answer(page)
        assert page.locator(".msg.assistant").count() == 2


def test_regenerate_replaces_the_last_answer_and_copy_copies_it(
    page: Any, server: Callable[..., str]
) -> None:
    base = server(make_app())
    page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    open_chat(page, base)
    send(page, "hello")
    answer = wait_answer(page)
    answer.get_by_role("button", name="Copy", exact=True).click()
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied.startswith('Thanks for asking about "hello"')
    answer.get_by_role("button", name="Regenerate").click()
    page.wait_for_function(
        "() => document.querySelectorAll('.msg.assistant').length === 1"
        " && document.querySelector('.msg.assistant').dataset.state === 'done'",
        timeout=TIMEOUT_MS,
    )
    assert page.locator(".msg.user").count() == 1


def test_a_sponsored_block_is_a_labelled_card_with_a_tracked_link(
    page: Any, server: Callable[..., str]
) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_track_clicks=True))
    open_chat(page, base)
    send(page, "pasta recipes for dinner")
    answer = wait_answer(page)
    card = answer.locator(".ad-card")
    assert card.count() == 1
    assert card.locator(".ad-label").inner_text().lower() == "sponsored"
    assert card.get_attribute("aria-label").startswith("Sponsored by")
    assert card.locator(".ad-advertiser").inner_text()
    link = card.locator("a.ad-link")
    assert link.get_attribute("href").startswith(base + "/v1/ads/click/")
    assert "sponsored" in link.get_attribute("rel")
    assert "[ad]" not in answer.inner_text() and "[link]" not in answer.inner_text()


def test_switching_model_sends_the_next_message_to_it(
    page: Any, server: Callable[..., str]
) -> None:
    upstream = FakeUpstream(text_reply(openai_stream, ["Hello", " from", " gpt."]))
    base = server(make_app(upstream))
    open_chat(page, base)
    page.select_option("#model", "gpt-4o")
    send(page, "hi")
    answer = wait_answer(page)
    assert answer.locator(".who").inner_text() == "gpt-4o"
    assert answer.locator(".answer").inner_text() == "Hello from gpt."
    assert upstream.bodies[0]["model"] == "gpt-4o"
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    assert page.locator("#model").input_value() == "gpt-4o"  # remembered


def test_a_failing_model_shows_the_error_banner_with_its_type(
    page: Any, server: Callable[..., str]
) -> None:
    upstream = FakeUpstream(Reply(status=500, pieces=[b'{"error": {"message": "upstream down"}}']))
    base = server(make_app(upstream))
    open_chat(page, base)
    page.select_option("#model", "gpt-4o")
    send(page, "hi")
    answer = wait_answer(page, "error")
    banner = page.locator("#banner")
    assert banner.is_visible() and banner.get_attribute("role") == "alert"
    assert page.locator("#banner-type").inner_text() == "ProviderBizError"
    assert "upstream down" in page.locator("#banner-message").inner_text()
    assert "ProviderBizError" in answer.locator(".status").inner_text()
    page.click("#banner-close")
    assert banner.is_hidden()


def test_a_stream_that_breaks_mid_answer_keeps_the_text_and_shows_the_error(
    page: Any, server: Callable[..., str]
) -> None:
    events = [e + b"\n\n" for e in openai_stream(["Half", " an", " answer"]).split(b"\n\n") if e]
    base = server(make_app(FakeUpstream(Reply(pieces=events, fail_after=3, delay=0.05))))
    open_chat(page, base)
    page.select_option("#model", "gpt-4o")
    send(page, "hi")
    answer = wait_answer(page, "error")
    assert answer.locator(".answer").inner_text().startswith("Half an")
    assert page.locator("#banner-type").inner_text() == "ProviderBizError"


def test_the_client_key_is_asked_once_kept_in_the_browser_and_never_in_the_url(
    page: Any, server: Callable[..., str]
) -> None:
    base = server(make_app(echo_api_keys="secret-key"))
    page.goto(base + "/")
    page.wait_for_selector("#key-dialog[open]", timeout=TIMEOUT_MS)
    page.fill("#key-input", "secret-key")
    page.click("#key-save")
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    assert page.evaluate("localStorage.getItem('echo.clientKey')") == "secret-key"
    send(page, "hi")
    wait_answer(page)
    assert "secret-key" not in page.url
    page.reload()
    page.wait_for_selector("body[data-ready=true]", timeout=TIMEOUT_MS)
    assert not page.locator("#key-dialog").evaluate("d => d.open")


def test_keyboard_alone_can_send(page: Any, server: Callable[..., str]) -> None:
    base = server(make_app())
    open_chat(page, base)
    assert page.evaluate("document.activeElement.id") == "prompt"
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    wait_answer(page)
    page.keyboard.press("Shift+Tab")  # back from the composer into the page
    assert page.evaluate("document.activeElement.tagName") in ("BUTTON", "SELECT", "A")


@pytest.mark.parametrize(
    ("scheme", "width", "height", "name"),
    [
        ("light", 1280, 800, "chat-light-desktop"),
        ("dark", 1280, 800, "chat-dark-desktop"),
        ("light", 390, 844, "chat-light-phone"),
        ("dark", 390, 844, "chat-dark-phone"),
    ],
)
def test_screenshots(
    chromium: Any, server: Callable[..., str], scheme: str, width: int, height: int, name: str
) -> None:
    base = server(make_app(ad_injection_rate=1.0, ad_track_clicks=True))
    context = chromium.new_context(color_scheme=scheme, viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        open_chat(page, base)
        send(page, "What are good pasta recipes for a quick dinner?")
        wait_answer(page)
        page.locator(".ad-card").scroll_into_view_if_needed()
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path: Path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path))
        assert path.stat().st_size > 10_000
        background = page.evaluate("getComputedStyle(document.body).backgroundColor")
        dark = background in ("rgb(21, 23, 27)",)
        assert dark == (scheme == "dark")
        if width < 500:  # nothing wider than the phone
            assert page.evaluate("document.documentElement.scrollWidth") <= width
    finally:
        context.close()
