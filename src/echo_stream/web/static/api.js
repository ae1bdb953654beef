// Talking to the gateway: keys kept in localStorage (never in a URL), JSON helpers, SSE parsing.

export class ApiError extends Error {
  constructor(status, type, message, body) {
    super(message);
    this.status = status;
    this.type = type;
    this.body = body;
  }
}

export function storedKey(name) {
  try {
    return localStorage.getItem(name) || "";
  } catch {
    return "";
  }
}

export function storeKey(name, value) {
  try {
    if (value) localStorage.setItem(name, value);
    else localStorage.removeItem(name);
  } catch {
    // Private mode without storage: the key lives as long as the page.
  }
}

/** Ask for a key in the page's <dialog>; resolves to the key, or null when cancelled. */
export function askKey(dialog, reason) {
  const input = dialog.querySelector("input");
  const why = dialog.querySelector("[id$='-reason']");
  if (why && reason) why.textContent = reason;
  input.value = "";
  return new Promise((resolve) => {
    const cancel = dialog.querySelector("[id$='-cancel']");
    const onCancel = () => dialog.close("cancel");
    cancel.addEventListener("click", onCancel, { once: true });
    dialog.addEventListener(
      "close",
      () => {
        cancel.removeEventListener("click", onCancel);
        resolve(dialog.returnValue === "save" && input.value.trim() ? input.value.trim() : null);
      },
      { once: true },
    );
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

export function authHeaders(key) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The error a failed response describes: Lobe's {body, errorType} or OpenAI's {error}. */
export async function errorFrom(response) {
  let data = null;
  try {
    data = await response.json();
  } catch {
    // Not JSON: fall back to the status.
  }
  if (data && data.errorType !== undefined) {
    const message = (data.body && data.body.message) || `HTTP ${response.status}`;
    return new ApiError(response.status, String(data.errorType), message, data.body);
  }
  if (data && data.error) {
    const error = data.error;
    const message = typeof error === "string" ? error : error.message || `HTTP ${response.status}`;
    const type = (error && (error.code || error.type)) || String(response.status);
    return new ApiError(response.status, type, message, error);
  }
  return new ApiError(response.status, String(response.status), `HTTP ${response.status}`, null);
}

/** Server-sent events from a fetch response body: {id, event, data} objects. */
export async function* readEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value.replace(/\r\n/g, "\n");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = parseBlock(block);
        if (event) yield event;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function parseBlock(block) {
  const event = { id: "", event: "message", data: "" };
  const data = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") event.event = value;
    else if (field === "id") event.id = value;
  }
  if (!data.length) return null;
  event.data = data.join("\n");
  return event;
}
