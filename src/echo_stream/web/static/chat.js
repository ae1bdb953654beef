// The web chat page: model picker, composer, streaming answers over Lobe's protocol
// (POST /api/chat), stop, regenerate, history when the gateway stores conversations, and the
// voice stream (POST /api/stream) when it has text-to-speech.

import { ApiError, askKey, authHeaders, errorFrom, readEvents, storedKey, storeKey } from "./api.js";
import { AnswerView } from "./answer.js";
import { History } from "./history.js";
import { VoicePlayer } from "./voice.js";

const KEY = "echo.clientKey";
const MODEL = "echo.model";
const VOICE = "echo.voice";
const VOICE_PROVIDERS = { google: "gemini" }; // /v1/models owned_by -> the voice stream's llmProvider

const $ = (id) => document.getElementById(id);
const ui = {
  model: $("model"), voice: $("voice"), keyButton: $("key-button"), keyDialog: $("key-dialog"),
  banner: $("banner"), bannerType: $("banner-type"), bannerMessage: $("banner-message"),
  bannerClose: $("banner-close"), thread: $("thread"), messages: $("messages"), empty: $("empty"),
  composer: $("composer"), prompt: $("prompt"), send: $("send"), stop: $("stop"),
};
const state = {
  key: storedKey(KEY),
  messages: [], // what the model sees: {role, content}, the model's own text only (no ads)
  busy: false,
  controller: null,
  conversationId: null,
  voiceProvider: null,
  voice: false,
  owners: new Map(),
  lastView: null,
  player: null,
};

/** fetch with the client key; a 401 asks for the key once and tries again. */
async function request(path, init = {}) {
  for (;;) {
    const headers = { ...(init.headers || {}), ...authHeaders(state.key) };
    const response = await fetch(path, { ...init, headers });
    if (response.status !== 401) return response;
    const reason = state.key
      ? "That key was refused. Enter a valid client key."
      : "This gateway needs a client key. It is kept in this browser only.";
    const key = await askKey(ui.keyDialog, reason);
    if (!key) return response;
    state.key = key;
    storeKey(KEY, key);
  }
}

const history = new History({
  request,
  onOpen: openConversation,
  onNew: newConversation,
  onError: showError,
});

function showError(error) {
  ui.bannerType.textContent = error.type || "Error";
  ui.bannerMessage.textContent = error.message || "";
  ui.banner.hidden = false;
}

function hideError() {
  ui.banner.hidden = true;
}

function setBusy(busy) {
  state.busy = busy;
  ui.send.hidden = busy;
  ui.stop.hidden = !busy;
  ui.model.disabled = busy;
  if (!busy && document.activeElement === ui.stop) ui.prompt.focus();
}

function follow() {
  const { thread } = ui;
  if (thread.scrollHeight - thread.scrollTop - thread.clientHeight < 160) thread.scrollTop = thread.scrollHeight;
}

function addUserBubble(text) {
  const item = document.createElement("li");
  item.className = "msg user";
  const bubble = document.createElement("div");
  bubble.className = "bubble";
  bubble.textContent = text;
  item.append(bubble);
  ui.messages.append(item);
  ui.empty.hidden = true;
}

async function loadModels() {
  let response;
  try {
    response = await request("/v1/models");
  } catch (error) {
    showError(new ApiError(0, "NetworkError", `Could not reach the gateway: ${error.message}`));
    return;
  }
  if (!response.ok) {
    showError(await errorFrom(response));
    return;
  }
  const { data } = await response.json();
  state.owners = new Map(data.map((model) => [model.id, model.owned_by]));
  ui.model.replaceChildren(...data.map((model) => new Option(model.id, model.id)));
  const saved = storedKey(MODEL);
  if (saved && state.owners.has(saved)) ui.model.value = saved;
  ui.model.disabled = false;
  hideError();
}

async function detectVoice() {
  try {
    const response = await request("/api/tts/providers");
    if (!response.ok) return;
    const providers = await response.json();
    state.voiceProvider = providers.default || null;
  } catch {
    return;
  }
  ui.voice.hidden = false;
  setVoice(storedKey(VOICE) === "on");
}

function setVoice(on) {
  state.voice = on;
  ui.voice.setAttribute("aria-pressed", String(on));
  storeKey(VOICE, on ? "on" : "");
  if (!on && state.player) {
    state.player.stop();
    state.player = null;
  }
}

function adoptConversation(response) {
  const id = response.headers.get("X-Conversation-Id");
  if (id) {
    state.conversationId = id;
    history.select(id);
  }
}

function conversationHeaders() {
  return history.enabled ? { "X-Conversation-Id": state.conversationId || "new" } : {};
}

async function streamLobe(view, model, signal) {
  const response = await request("/api/chat", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...conversationHeaders() },
    body: JSON.stringify({ model, messages: state.messages, stream: true }),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  adoptConversation(response);
  let reason = null;
  for await (const event of readEvents(response)) {
    let data;
    try {
      data = JSON.parse(event.data);
    } catch {
      throw new ApiError(200, "StreamChunkError", "The stream sent an event that does not parse");
    }
    switch (event.event) {
      case "text": view.appendText(String(data)); break;
      case "reasoning": view.addReasoning(String(data)); break;
      case "tool_calls": view.addToolCalls(data); break;
      case "ad": view.addAd(data); break;
      case "usage": view.showUsage(data); break;
      case "speed": view.showSpeed(data); break;
      case "stop": reason = String(data); break;
      case "error":
        throw new ApiError(200, String(data.type), data.message || "The stream failed", data.body);
      default: break; // event types this page does not know are skipped, as in Lobe
    }
    follow();
  }
  if (reason === null) throw new ApiError(200, "StreamChunkError", "The stream ended before the answer finished");
  return reason === "length" ? "Cut at the length limit" : "";
}

async function streamVoice(view, model, signal) {
  const prompt = state.messages[state.messages.length - 1].content;
  const owner = state.owners.get(model);
  const response = await request("/api/stream", {
    method: "POST",
    headers: { "Content-Type": "application/json", ...conversationHeaders() },
    body: JSON.stringify({
      prompt,
      messages: state.messages.slice(0, -1),
      llmProvider: VOICE_PROVIDERS[owner] || owner,
      llmModel: model,
      ttsProvider: state.voiceProvider || undefined,
      enableTTS: true,
      streamTTS: false,
    }),
    signal,
  });
  if (!response.ok) throw await errorFrom(response);
  adoptConversation(response);
  const scheduled = [];
  const player = new VoicePlayer((sequence) => {
    scheduled.push(sequence);
    view.item.dataset.voiceScheduled = scheduled.join(",");
  });
  state.player = player;
  let done = false;
  for await (const event of readEvents(response)) {
    const data = JSON.parse(event.data);
    switch (data.type) {
      case "text": view.appendText(String(data.content || "")); break;
      case "audio": player.add(data.playSequence, data.audio); break;
      case "tts_error": player.skip(data.playSequence); break;
      case "tts_total": player.total(data.totalSequences); break;
      case "done": done = true; break;
      case "error": {
        const error = data.error;
        const message = typeof error === "string" ? error : (error && error.message) || "The voice stream failed";
        throw new ApiError(200, (error && error.type) || "VoiceStreamError", message, error);
      }
      default: break;
    }
    follow();
  }
  if (!done) throw new ApiError(200, "StreamChunkError", "The voice stream ended before it finished");
  return "";
}

async function answer() {
  const model = ui.model.value;
  if (state.player) state.player.stop();
  state.player = null;
  if (state.lastView) state.lastView.regenerate.hidden = true;
  const view = new AnswerView(ui.messages, model, { onRegenerate: () => regenerate(view) });
  state.lastView = view;
  follow();
  const controller = new AbortController();
  state.controller = controller;
  setBusy(true);
  let outcome;
  try {
    const stream = state.voice ? streamVoice : streamLobe;
    outcome = { state: "done", note: await stream(view, model, controller.signal) };
  } catch (error) {
    if (controller.signal.aborted) outcome = { state: "stopped", note: "Stopped" };
    else {
      const failure = error instanceof ApiError ? error : new ApiError(0, "NetworkError", error.message);
      outcome = { state: "error", note: `Failed: ${failure.type}`, error: failure };
    }
  } finally {
    state.controller = null;
    setBusy(false);
  }
  if (outcome.state === "stopped" && state.player) state.player.stop();
  view.end(outcome.state, outcome.note);
  if (outcome.error) showError(outcome.error);
  if (view.text) {
    state.messages.push({ role: "assistant", content: view.text });
    view.recorded = true;
  }
  follow();
  history.refresh().catch(() => {});
}

async function regenerate(view) {
  if (state.busy || view !== state.lastView) return;
  if (view.recorded) state.messages.pop();
  view.remove();
  state.lastView = null;
  hideError();
  await answer();
}

async function send(text) {
  if (state.busy || !text.trim() || ui.model.disabled) return;
  hideError();
  state.messages.push({ role: "user", content: text });
  addUserBubble(text);
  ui.prompt.value = "";
  resizePrompt();
  await answer();
}

function newConversation() {
  if (state.controller) state.controller.abort();
  state.messages = [];
  state.conversationId = null;
  state.lastView = null;
  ui.messages.replaceChildren();
  ui.empty.hidden = false;
  hideError();
  ui.prompt.focus();
}

function openConversation(conversation) {
  newConversation();
  state.conversationId = conversation.id;
  if (conversation.model && state.owners.has(conversation.model)) ui.model.value = conversation.model;
  for (const message of conversation.messages || []) {
    if (message.role === "user") {
      addUserBubble(message.content || "");
      state.messages.push({ role: "user", content: message.content || "" });
    } else if (message.role === "assistant") {
      const view = new AnswerView(ui.messages, message.model || conversation.model || "", {
        onRegenerate: () => regenerate(view),
      });
      view.showStored(message.content || "", message.ad);
      if (message.input_tokens || message.output_tokens) {
        view.showUsage({ totalInputTokens: message.input_tokens || 0, totalOutputTokens: message.output_tokens || 0 });
      }
      const stopped = message.status === "aborted";
      const failed = message.status === "error";
      view.end(stopped ? "stopped" : failed ? "error" : "done", stopped ? "Stopped" : failed ? "Failed" : "");
      if (state.lastView) state.lastView.regenerate.hidden = true;
      state.lastView = view;
      if (message.content) {
        state.messages.push({ role: "assistant", content: message.content });
        view.recorded = true;
      }
    } else if (message.role === "system") {
      state.messages.push({ role: "system", content: message.content || "" });
    }
  }
  ui.empty.hidden = ui.messages.children.length > 0;
  ui.thread.scrollTop = ui.thread.scrollHeight;
}

function resizePrompt() {
  ui.prompt.style.height = "auto";
  ui.prompt.style.height = `${Math.min(ui.prompt.scrollHeight + 2, 192)}px`;
}

ui.composer.addEventListener("submit", (event) => {
  event.preventDefault();
  send(ui.prompt.value);
});
ui.prompt.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    send(ui.prompt.value);
  }
});
ui.prompt.addEventListener("input", resizePrompt);
ui.stop.addEventListener("click", () => {
  if (state.controller) state.controller.abort();
  if (state.player) state.player.stop();
});
ui.model.addEventListener("change", () => storeKey(MODEL, ui.model.value));
ui.voice.addEventListener("click", () => setVoice(!state.voice));
ui.bannerClose.addEventListener("click", hideError);
ui.keyButton.addEventListener("click", async () => {
  const key = await askKey(ui.keyDialog, "The client key for this gateway, kept in this browser only.");
  if (key === null) return;
  state.key = key;
  storeKey(KEY, key);
  await loadModels();
});

async function start() {
  await loadModels();
  await Promise.all([history.detect(), detectVoice()]);
  document.body.dataset.ready = "true";
  ui.prompt.focus();
}

start();
