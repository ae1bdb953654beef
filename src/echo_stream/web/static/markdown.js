// Markdown -> sanitised HTML, highlighted code with copy buttons. Model output is untrusted:
// raw HTML in it shows as text, images become plain links (never loaded), links are http(s)
// only, and DOMPurify has the last word on whatever marked produces.

const { marked, DOMPurify, hljs } = window;

const escapeHtml = (text) =>
  String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);

export const isWebLink = (href) => {
  try {
    const url = new URL(href, window.location.href);
    return (url.protocol === "http:" || url.protocol === "https:") && /^https?:\/\//i.test(String(href).trim());
  } catch {
    return false;
  }
};

marked.use({
  gfm: true,
  renderer: {
    html({ text }) {
      return escapeHtml(text);
    },
    image({ href, text }) {
      const label = `[image: ${text || "untitled"}]`;
      return isWebLink(href) ? `<a href="${escapeHtml(href)}">${escapeHtml(label)}</a>` : escapeHtml(label);
    },
  },
});

const FORBIDDEN_TAGS = [
  "img", "image", "svg", "math", "style", "script", "iframe", "frame", "object", "embed", "form",
  "input", "button", "textarea", "select", "option", "video", "audio", "source", "picture", "link", "meta", "base",
];
const PURIFY = {
  FORBID_TAGS: FORBIDDEN_TAGS,
  FORBID_ATTR: ["style", "id", "name", "srcset", "src", "action", "formaction"],
  ALLOW_DATA_ATTR: false,
};

DOMPurify.addHook("uponSanitizeAttribute", (node, data) => {
  // Classes only as marked writes them on code (language-x), so output cannot dress as the UI.
  if (data.attrName === "class") {
    data.keepAttr = node.nodeName === "CODE" && /^language-[\w+#-]+$/.test(data.attrValue);
  }
});
DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.nodeName !== "A") return;
  const href = node.getAttribute("href");
  if (!href || !isWebLink(href)) {
    node.removeAttribute("href");
    return;
  }
  node.setAttribute("target", "_blank");
  node.setAttribute("rel", "noopener noreferrer nofollow ugc");
});

if (hljs) hljs.configure({ ignoreUnescapedHTML: true });

/** Render `text` as markdown into `element` (replacing its content), safely. */
export function renderMarkdown(element, text) {
  element.innerHTML = DOMPurify.sanitize(marked.parse(text), PURIFY);
  for (const pre of element.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    if (code && hljs) {
      try {
        hljs.highlightElement(code);
      } catch {
        // An unknown language leaves the code plain.
      }
    }
    pre.append(copyButton(() => (code ? code.textContent : pre.textContent), "Copy code"));
  }
}

export function copyButton(getText, label = "Copy") {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "button copy-code";
  button.textContent = label;
  button.addEventListener("click", async () => {
    const ok = await copyText(getText());
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => (button.textContent = label), 1500);
  });
  return button;
}

export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.className = "sr-only";
    document.body.append(area);
    area.select();
    const ok = document.execCommand("copy");
    area.remove();
    return ok;
  }
}
