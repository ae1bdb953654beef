// The conversations sidebar (GET/PATCH/DELETE /v1/conversations): shown only when the gateway
// has stored conversations. Titles are text, never HTML.

import { errorFrom } from "./api.js";

export class History {
  constructor({ request, onOpen, onNew, onError }) {
    this.request = request; // (path, init) -> fetch Response, with the client key
    this.onOpen = onOpen;
    this.onNew = onNew;
    this.onError = onError;
    this.aside = document.getElementById("history");
    this.list = document.getElementById("conversations");
    this.empty = document.getElementById("history-empty");
    this.toggle = document.getElementById("toggle-history");
    this.more = document.getElementById("history-more");
    this.cursor = null;
    this.current = null;
    this.enabled = false;
    document.getElementById("new-chat").addEventListener("click", () => {
      this.select(null);
      this.onNew();
      this.collapseOnPhone();
    });
    this.more.addEventListener("click", () => this.loadMore());
    this.toggle.addEventListener("click", () => {
      const open = this.aside.classList.toggle("collapsed") === false;
      this.toggle.setAttribute("aria-expanded", String(open));
    });
  }

  /** Show the sidebar if the gateway stores conversations (404 means it does not). */
  async detect() {
    let response;
    try {
      response = await this.request("/v1/conversations?limit=20");
    } catch {
      return false;
    }
    if (!response.ok) return false;
    this.enabled = true;
    this.aside.hidden = false;
    this.toggle.hidden = false;
    this.collapseOnPhone();
    this.render(await response.json());
    return true;
  }

  collapseOnPhone() {
    if (window.matchMedia("(max-width: 720px)").matches) {
      this.aside.classList.add("collapsed");
      this.toggle.setAttribute("aria-expanded", "false");
    }
  }

  async refresh() {
    if (!this.enabled) return;
    const response = await this.request("/v1/conversations?limit=20");
    if (response.ok) this.render(await response.json());
  }

  select(id) {
    this.current = id;
    for (const item of this.list.children) {
      item.setAttribute("aria-current", String(item.dataset.id === id));
    }
  }

  render(page) {
    this.list.replaceChildren(...page.data.map((conversation) => this.item(conversation)));
    this.empty.hidden = page.data.length > 0;
    this.paged(page);
    this.select(this.current);
  }

  paged(page) {
    this.cursor = page.has_more ? page.next_cursor : null;
    this.more.hidden = !this.cursor;
  }

  /** The next page of older conversations, appended below. */
  async loadMore() {
    if (!this.cursor) return;
    const response = await this.request(`/v1/conversations?limit=20&cursor=${encodeURIComponent(this.cursor)}`);
    if (!response.ok) {
      this.onError(await errorFrom(response));
      return;
    }
    const page = await response.json();
    const known = new Set([...this.list.children].map((item) => item.dataset.id));
    this.list.append(...page.data.filter((c) => !known.has(c.id)).map((c) => this.item(c)));
    this.paged(page);
    this.select(this.current);
  }

  item(conversation) {
    const li = document.createElement("li");
    li.className = "conversation";
    li.dataset.id = conversation.id;
    const open = document.createElement("button");
    open.type = "button";
    open.className = "open";
    open.textContent = conversation.title || "Untitled";
    open.title = conversation.title || "Untitled";
    open.addEventListener("click", () => this.open(conversation.id));
    const rename = document.createElement("button");
    rename.type = "button";
    rename.className = "button small rename";
    rename.textContent = "Rename";
    rename.setAttribute("aria-label", `Rename ${open.textContent}`);
    rename.addEventListener("click", () => this.startRename(li, conversation));
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "button small delete";
    remove.textContent = "Delete";
    remove.setAttribute("aria-label", `Delete ${open.textContent}`);
    remove.addEventListener("click", () => this.confirmDelete(remove, conversation.id));
    li.append(open, rename, remove);
    return li;
  }

  async open(id) {
    const response = await this.request(`/v1/conversations/${encodeURIComponent(id)}`);
    if (!response.ok) {
      this.onError(await errorFrom(response));
      return;
    }
    const conversation = await response.json();
    this.select(id);
    this.onOpen(conversation);
    this.collapseOnPhone();
  }

  startRename(li, conversation) {
    const input = document.createElement("input");
    input.value = conversation.title || "";
    input.setAttribute("aria-label", "New title");
    input.maxLength = 200;
    li.replaceChildren(input);
    input.focus();
    input.select();
    let done = false;
    const finish = async (save) => {
      if (done) return;
      done = true;
      const title = input.value.trim();
      if (save && title && title !== conversation.title) {
        const response = await this.request(`/v1/conversations/${encodeURIComponent(conversation.id)}`, {
          method: "PATCH",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ title }),
        });
        if (!response.ok) this.onError(await errorFrom(response));
      }
      await this.refresh();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
  }

  /** Two clicks delete: the first turns the button into a confirmation. */
  async confirmDelete(button, id) {
    if (button.dataset.armed !== "true") {
      button.dataset.armed = "true";
      button.textContent = "Confirm";
      setTimeout(() => {
        button.dataset.armed = "false";
        button.textContent = "Delete";
      }, 4000);
      return;
    }
    const response = await this.request(`/v1/conversations/${encodeURIComponent(id)}`, { method: "DELETE" });
    if (!response.ok && response.status !== 404) {
      this.onError(await errorFrom(response));
      return;
    }
    if (this.current === id) {
      this.current = null;
      this.onNew();
    }
    await this.refresh();
  }
}
