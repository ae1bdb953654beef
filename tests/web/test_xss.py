"""Hostile model output and hostile ad text render inert in the page (checked in the browser).

The upstream is a fake OpenAI that answers with script tags, event-handler attributes,
`javascript:` links and markdown images; the ad inventory is a file whose advertiser, title and
body carry the same. A routed response also hands the page an ad with a `javascript:` link, which
the inventory itself would refuse.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.conftest import make_app
from tests.upstreams import FakeUpstream, openai_stream, text_reply
from tests.web.helpers import open_chat, send, wait_answer

HOSTILE = [
    "Here is some text that is long enough to carry an ad after it. ",
    "It keeps going for a while so that the placement rule is met.\n\n",
    "<script>window.__pwned = 'script'</script>\n\n",
    '<img src="x" onerror="window.__pwned = \'img\'">\n\n',
    "[click me](javascript:window.__pwned='link')\n\n",
    "<a href=\"javascript:window.__pwned='anchor'\">anchor</a>\n\n",
    "![tracking pixel](https://evil.example/pixel.png)\n\n",
    "![inline](data:image/svg+xml;base64,PHN2ZyBvbmxvYWQ9ImFsZXJ0KDEpIj4=)\n\n",
    "<svg onload=\"window.__pwned='svg'\"></svg>\n\n",
    '<div class="ad-card" style="position:fixed">fake card</div>\n\n',
    "<iframe src=\"javascript:window.__pwned='iframe'\"></iframe>\n\n",
    "A [real link](https://example.com/ok) stays a link.",
]

INVENTORY = {
    "ads": [
        {
            "id": "evil",
            "advertiser": "<img src=x onerror=\"window.__pwned='ad-advertiser'\">Evil Co",
            "title": "<script>window.__pwned='ad-title'</script>Title",
            "body": "[x](javascript:window.__pwned='ad-body') <b onmouseover=alert(1)>bold</b>",
            "url": "https://evil.example/landing?q=\"><script>window.__pwned='ad-url'</script>",
            "keywords": ["anything", "text", "long"],
        }
    ]
}

INERT_CHECK = """() => {
  const root = document.getElementById('messages');
  const bad = [];
  if (window.__pwned !== undefined) bad.push('executed: ' + window.__pwned);
  for (const tag of ['script', 'img', 'svg', 'iframe', 'object', 'embed', 'style']) {
    if (root.querySelector(tag)) bad.push('element: ' + tag);
  }
  for (const node of root.querySelectorAll('*')) {
    for (const attr of node.attributes) {
      if (/^on/i.test(attr.name) || attr.name === 'style') bad.push('attribute: ' + attr.name);
    }
  }
  for (const a of root.querySelectorAll('a[href]')) {
    if (!/^https?:\\/\\//i.test(a.getAttribute('href'))) bad.push('href: ' + a.getAttribute('href'));
  }
  // Model output keeps no classes (only marked's language-x on code), so it cannot pose as UI.
  for (const node of root.querySelectorAll('.answer .part [class]')) {
    if (node.closest('pre') || node.matches('.copy-code')) continue;
    bad.push('class from model output: ' + node.className);
  }
  return bad;
}"""


def test_hostile_model_output_and_ad_text_render_inert(
    page: Any, server: Callable[..., str], tmp_path: Path
) -> None:
    ads_file = tmp_path / "ads.json"
    ads_file.write_text(json.dumps(INVENTORY))
    upstream = FakeUpstream(text_reply(openai_stream, HOSTILE))
    base = server(
        make_app(
            upstream,
            ad_injection_rate=1.0,
            ads_file=str(ads_file),
            min_response_length=50,
            ad_placement="end",
        )
    )
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    open_chat(page, base)
    page.select_option("#model", "gpt-4o")
    send(page, "anything long text")
    answer = wait_answer(page)
    text = answer.locator(".answer").inner_text()
    # The hostile markup is shown as text, not run.
    assert "<script>window.__pwned = 'script'</script>" in text
    assert "[image: tracking pixel]" in text
    card = answer.locator(".ad-card")
    assert card.count() == 1
    assert "<img src=x" in card.locator(".ad-advertiser").inner_text()
    assert "<script>" in card.locator(".ad-title").inner_text()
    # Try to trigger whatever might be there.
    for link in answer.locator("a").all():
        link.hover()
    answer.get_by_text("click me").click()
    assert '<a href="javascript:' in text  # raw HTML from a model is shown, not parsed
    assert page.evaluate(INERT_CHECK) == []
    assert answer.get_by_role("link", name="real link").get_attribute("href") == (
        "https://example.com/ok"
    )
    assert dialogs == []


def test_an_ad_link_that_is_not_http_is_dropped(page: Any, server: Callable[..., str]) -> None:
    base = server(make_app())
    lobe = (
        'id: m\nevent: text\ndata: "Answer."\n\n'
        'id: m\nevent: ad\ndata: {"adId":"x","advertiser":"A","title":"T","text":"B",'
        '"link":"javascript:window.__pwned=\'ad-link\'"}\n\n'
        'id: m\nevent: stop\ndata: "stop"\n\n'
    )

    def fulfil(route: Any) -> None:
        route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=lobe)

    page.route("**/api/chat", fulfil)
    open_chat(page, base)
    send(page, "hi")
    answer = wait_answer(page)
    assert answer.locator(".ad-card").count() == 1
    assert answer.locator(".ad-card a").count() == 0
    assert page.evaluate(INERT_CHECK) == []
