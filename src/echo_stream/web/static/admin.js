// The ad dashboard: totals, per-ad and no-ad-reason tables from GET /v1/ads/stats, and a plain
// SVG chart of GET /v1/ads/timeline; refreshed every few seconds while the tab is visible.

import { askKey, authHeaders, errorFrom, storedKey, storeKey } from "./api.js";

const KEY = "echo.adminKey";
const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
const svgNS = "http://www.w3.org/2000/svg";
let key = storedKey(KEY);
let timer = 0;
let asking = false;

const percent = (value) => `${(100 * value).toFixed(1)}%`;
const count = (value) => new Intl.NumberFormat().format(value);
const REASONS = {
  placed: "Ad placed",
  rate: "Not drawn (AD_INJECTION_RATE)",
  sensitive_topic: "Sensitive topic",
  frequency_cap: "Frequency cap",
  multiple_choices: "Several choices (n > 1)",
  json_output: "JSON output",
  ad_free_key: "Ad-free key",
  disabled: "Ads per response set to 0",
  store_error: "Ad store error",
  not_ready: "Choice not ready in time",
  unsafe_end: "No safe place in the answer",
};

async function get(path) {
  const response = await fetch(path, { headers: authHeaders(key) });
  if (response.status === 401 && !asking) {
    asking = true;
    const entered = await askKey($("key-dialog"), key ? "That admin key was refused." : undefined);
    asking = false;
    if (entered) {
      key = entered;
      storeKey(KEY, key);
      return get(path);
    }
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

function cell(text, header = false) {
  const node = document.createElement(header ? "th" : "td");
  if (header) node.scope = "row";
  node.textContent = text;
  return node;
}

function renderStats(stats) {
  const ads = Object.entries(stats.ads);
  const impressions = ads.reduce((sum, [, ad]) => sum + ad.impressions, 0);
  const clicks = ads.reduce((sum, [, ad]) => sum + ad.clicks, 0);
  $("t-impressions").textContent = count(impressions);
  $("t-clicks").textContent = count(clicks);
  $("t-ctr").textContent = impressions ? percent(clicks / impressions) : "–";
  $("t-fill").textContent = stats.responses ? percent(stats.fill_rate) : "–";
  $("t-responses").textContent = count(stats.responses);
  const rows = ads.map(([id, ad]) => {
    const row = document.createElement("tr");
    row.append(cell(id, true), cell(count(ad.impressions)), cell(count(ad.clicks)), cell(percent(ad.ctr)));
    return row;
  });
  if (!rows.length) rows.push(emptyRow(4, "No impressions yet."));
  $("ads-table").tBodies[0].replaceChildren(...rows);
  const outcomes = Object.entries(stats.decisions).sort((a, b) => b[1] - a[1]);
  const reasonRows = outcomes.map(([outcome, n]) => {
    const row = document.createElement("tr");
    row.dataset.outcome = outcome;
    row.append(cell(REASONS[outcome] || outcome, true), cell(count(n)), cell(percent(n / stats.responses)));
    return row;
  });
  if (!reasonRows.length) reasonRows.push(emptyRow(3, "No responses yet."));
  $("reasons-table").tBodies[0].replaceChildren(...reasonRows);
}

function emptyRow(span, text) {
  const row = document.createElement("tr");
  const td = cell(text);
  td.colSpan = span;
  row.append(td);
  return row;
}

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(svgNS, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderChart(timeline) {
  const points = timeline.points;
  const width = 720;
  const height = 220;
  const pad = { left: 36, right: 8, top: 10, bottom: 24 };
  const series = ["responses", "impressions", "clicks"];
  const max = Math.max(1, ...points.flatMap((p) => series.map((name) => p[name])));
  const x = (i) => pad.left + (i * (width - pad.left - pad.right)) / Math.max(1, points.length - 1);
  const y = (v) => height - pad.bottom - (v * (height - pad.top - pad.bottom)) / max;
  const total = (name) => points.reduce((sum, p) => sum + p[name], 0);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  chart.setAttribute(
    "aria-label",
    `Per minute over the last ${points.length} minutes: ${total("responses")} responses, ` +
      `${total("impressions")} impressions, ${total("clicks")} clicks; peak ${max} in a minute.`,
  );
  for (const fraction of [0, 0.5, 1]) {
    const value = Math.round(max * fraction);
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: fraction ? "grid" : "axis" }));
    chart.append(svg("text", { x: pad.left - 6, y: y(value) + 4, "text-anchor": "end" }, String(value)));
  }
  const label = (start) => new Date(start * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (points.length) {
    chart.append(svg("text", { x: pad.left, y: height - 6 }, label(points[0].start)));
    chart.append(svg("text", { x: width - pad.right, y: height - 6, "text-anchor": "end" }, label(points[points.length - 1].start)));
  }
  for (const name of series) {
    const path = points.map((p, i) => `${x(i).toFixed(1)},${y(p[name]).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points: path, class: `s-${name}`, "data-series": name }));
  }
  $("chart").replaceChildren(chart);
}

async function refresh() {
  clearTimeout(timer);
  try {
    const minutes = $("window").value;
    const [stats, timeline] = await Promise.all([get("/v1/ads/stats"), get(`/v1/ads/timeline?minutes=${minutes}`)]);
    renderStats(stats);
    renderChart(timeline);
    $("banner").hidden = true;
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
    document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || 0) + 1);
  } catch (error) {
    $("banner-type").textContent = error.type || "Error";
    $("banner-message").textContent = error.message;
    $("banner").hidden = false;
  }
  if (document.visibilityState === "visible") timer = setTimeout(refresh, REFRESH_MS);
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") refresh();
  else clearTimeout(timer);
});
$("window").addEventListener("change", refresh);
$("key-button").addEventListener("click", async () => {
  const entered = await askKey($("key-dialog"));
  if (entered) {
    key = entered;
    storeKey(KEY, key);
    refresh();
  }
});
refresh();
