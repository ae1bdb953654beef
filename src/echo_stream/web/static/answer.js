// One assistant answer on screen: streamed markdown parts, ad cards between them, a typing
// indicator, usage and speed, stopped/error status, and the copy/regenerate actions.

import { copyText, isWebLink, renderMarkdown } from "./markdown.js";

const el = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
};

/** A labelled sponsored card; every field is text, the link only when it is http(s). */
export function adCard(ad) {
  const card = el("aside", "ad-card");
  card.setAttribute("aria-label", `Sponsored by ${ad.advertiser || "an advertiser"}`);
  card.dataset.adId = String(ad.adId || "");
  const head = el("p", "ad-head");
  head.append(el("span", "ad-label", "Sponsored"), el("strong", "ad-advertiser", String(ad.advertiser || "")));
  card.append(head);
  if (ad.title) card.append(el("p", "ad-title", String(ad.title)));
  if (ad.text) card.append(el("p", "ad-text", String(ad.text)));
  if (ad.link && isWebLink(ad.link)) {
    const link = el("a", "ad-link", `Visit ${ad.advertiser || "the advertiser"}`);
    link.href = ad.link;
    link.target = "_blank";
    link.rel = "sponsored noopener noreferrer";
    const p = el("p");
    p.append(link);
    card.append(p);
  }
  return card;
}

const number = (value) => new Intl.NumberFormat().format(Math.round(value));

export class AnswerView {
  constructor(list, model, { onRegenerate } = {}) {
    this.text = "";
    this.parts = [];
    this.frame = 0;
    this.item = el("li", "msg assistant");
    this.item.dataset.state = "streaming";
    const who = el("div", "who", model);
    this.body = el("div", "answer");
    this.body.setAttribute("aria-live", "polite");
    this.body.setAttribute("aria-busy", "true");
    this.typing = el("div", "typing");
    this.typing.setAttribute("role", "status");
    this.typing.setAttribute("aria-label", "The assistant is typing");
    this.typing.append(el("span"), el("span"), el("span"));
    this.meta = el("div", "meta");
    this.status = el("span", "status");
    this.stats = el("span", "stats");
    this.actions = el("div", "actions");
    this.actions.hidden = true;
    const copy = el("button", "button", "Copy");
    copy.type = "button";
    copy.addEventListener("click", async () => {
      copy.textContent = (await copyText(this.text)) ? "Copied" : "Copy failed";
      setTimeout(() => (copy.textContent = "Copy"), 1500);
    });
    this.regenerate = el("button", "button regenerate", "Regenerate");
    this.regenerate.type = "button";
    if (onRegenerate) this.regenerate.addEventListener("click", onRegenerate);
    this.actions.append(copy, this.regenerate);
    this.meta.append(this.status, this.stats, this.actions);
    this.item.append(who, this.body, this.typing, this.meta);
    list.append(this.item);
  }

  currentPart() {
    let part = this.parts[this.parts.length - 1];
    if (!part || part.closed) {
      part = { el: el("div", "part"), text: "", dirty: false, closed: false };
      this.body.append(part.el);
      this.parts.push(part);
    }
    return part;
  }

  appendText(delta) {
    if (!delta) return;
    this.typing.hidden = true;
    this.text += delta;
    const part = this.currentPart();
    part.text += delta;
    part.dirty = true;
    this.schedule();
  }

  /** A sponsored card where the ad arrived; the model's text goes on below it. */
  addAd(ad) {
    const part = this.parts[this.parts.length - 1];
    if (part) part.closed = true;
    this.flush();
    this.body.append(adCard(ad));
  }

  /** Text already complete (an answer loaded from history), with its ad at `position`. */
  showStored(content, ad) {
    if (ad && Number.isInteger(ad.position) && ad.position >= 0) {
      this.appendText(content.slice(0, ad.position));
      this.addAd({ adId: ad.ad_id, advertiser: ad.advertiser, title: ad.title, text: ad.body, link: ad.url });
      this.appendText(content.slice(ad.position));
    } else {
      this.appendText(content);
    }
    this.flush();
  }

  addReasoning(delta) {
    if (!this.reasoning) {
      this.reasoning = el("details", "reasoning");
      this.reasoning.append(el("summary", "", "Reasoning"), el("div", "reasoning-text"));
      this.body.prepend(this.reasoning);
    }
    this.reasoning.lastChild.textContent += delta;
  }

  addToolCalls(calls) {
    this.typing.hidden = true;
    this.tools = this.tools || new Map();
    for (const call of calls) {
      let entry = this.tools.get(call.index);
      if (!entry) {
        entry = { name: (call.function && call.function.name) || "tool", args: "", el: el("div", "tool-call") };
        this.tools.set(call.index, entry);
        this.body.append(entry.el);
      }
      entry.args += (call.function && call.function.arguments) || "";
      entry.el.textContent = `Tool call: ${entry.name}(${entry.args})`;
    }
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.flush());
  }

  /** Render what changed since the last frame (at most once per animation frame). */
  flush() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.frame = 0;
    for (const part of this.parts) {
      if (!part.dirty) continue;
      part.dirty = false;
      renderMarkdown(part.el, part.text);
    }
  }

  showUsage(usage) {
    this.usage = usage;
    this.renderStats();
  }

  showSpeed(speed) {
    this.speed = speed;
    this.renderStats();
  }

  renderStats() {
    const bits = [];
    if (this.usage) {
      const out = this.usage.totalOutputTokens || this.usage.outputTextTokens || 0;
      const input = this.usage.totalInputTokens || this.usage.inputTextTokens || 0;
      bits.push(`${number(input)} tokens in · ${number(out)} out`);
    }
    if (this.speed) {
      if (this.speed.tps) bits.push(`${number(this.speed.tps)} tokens/s`);
      if (this.speed.ttft !== undefined) bits.push(`first token ${number(this.speed.ttft)} ms`);
    }
    this.stats.textContent = bits.join(" · ");
  }

  end(state, note = "") {
    this.flush();
    this.typing.hidden = true;
    this.body.setAttribute("aria-busy", "false");
    this.item.dataset.state = state;
    this.actions.hidden = false;
    if (note) {
      this.status.textContent = note;
      this.status.className = `status ${state}`;
    }
    if (!this.text && !this.tools && state !== "done") this.body.append(el("p", "muted", "No answer."));
  }

  remove() {
    if (this.frame) cancelAnimationFrame(this.frame);
    this.item.remove();
  }
}
