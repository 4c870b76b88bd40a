// The demo page: one signed-in user's feed as the API function answers it. Plain DOM,
// no framework; every text from the API goes in through textContent, never as markup.
"use strict";

const FORCE_REFRESH_COOLDOWN_MS = 30_000;

const state = {
  config: null,
  pages: 0,
  shown: 0,
  seen: new Set(),
  busy: false,
  cooldownUntil: 0,
  pendingForce: null, // the video id whose watch waits for the cooldown
  countdown: null,
};

const $ = (id) => document.getElementById(id);

function say(text) {
  $("message").textContent = text;
}

function api(path) {
  return `${state.config.api_base}${path}`;
}

async function callApi(path, options = {}) {
  const response = await fetch(api(path), options);
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  return { response, body };
}

function errorText(response, body) {
  const e = body && body.error;
  return e ? `${response.status} ${e.code}: ${e.message}` : `HTTP ${response.status}`;
}

function duration(secs) {
  if (!Number.isFinite(secs) || secs <= 0) return "";
  const h = Math.floor(secs / 3600);
  const m = Math.floor((secs % 3600) / 60);
  const s = String(secs % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function card(video) {
  const li = el("li", { class: "card", "data-video-id": video.video_id });
  if (state.seen.has(video.video_id)) {
    li.classList.add("repeat");
    li.append(el("strong", { class: "badge repeat-badge" }, "REPEATED"));
  }
  state.seen.add(video.video_id);

  const figure = el("div", { class: "thumb" });
  const img = el("img", {
    src: video.thumbnail_url,
    alt: `Thumbnail of “${video.title}”`,
    width: "320",
    height: "180",
    decoding: "async",
  });
  img.addEventListener("error", () => li.classList.add("broken"));
  figure.append(img);
  const time = duration(video.duration_secs);
  if (time) figure.append(el("span", { class: "duration", "aria-label": `duration ${time}` }, time));
  li.append(figure);

  const body = el("div", { class: "body" });
  const title = el("h4", { class: "title" });
  const link = el("a", { href: video.url, target: "_blank", rel: "noopener noreferrer" }, video.title);
  title.append(link);
  body.append(title);
  body.append(el("p", { class: "channel" }, video.channel_title));
  const why = el("p", { class: "reason" });
  why.append(el("span", { class: "visually-hidden" }, "Why: "));
  why.append(document.createTextNode(video.reason || "–"));
  body.append(why);
  const tags = el("p", { class: "tags" });
  tags.append(el("span", { class: "badge seen-badge" }, "seen"));
  if (video.trending) tags.append(el("span", { class: "badge" }, "trending"));
  body.append(tags);
  const watch = el("button", { type: "button", class: "watch" }, "Watched");
  watch.setAttribute("aria-label", `Record a watch of “${video.title}” and refresh`);
  watch.addEventListener("click", () => watched(video, li, watch));
  body.append(watch);
  li.append(body);
  return li;
}

function showPage(body, label) {
  const pages = $("pages");
  for (const older of pages.querySelectorAll(".page:not(.seen)")) older.classList.add("seen");
  state.pages += 1;
  const meta = body.meta || {};
  const section = el("section", { class: "page", "aria-labelledby": `page-${state.pages}` });
  const served = meta.served_at ? new Date(meta.served_at).toLocaleTimeString() : "";
  section.append(
    el(
      "h3",
      { id: `page-${state.pages}` },
      `Page ${state.pages} · ${body.count} videos · ${meta.cache_status || "?"}${label ? ` · ${label}` : ""} · ${served}`,
    ),
  );
  const list = el("ul", { class: "cards" });
  for (const video of body.videos || []) {
    list.append(card(video));
    state.shown += 1;
  }
  section.append(list);
  pages.prepend(section);

  $("cache-status").textContent = meta.cache_status || "–";
  $("pool-remaining").textContent = meta.pool_remaining ?? "–";
  $("refresh-queued").textContent = meta.refresh_queued ? "yes" : "no";
  $("shown").textContent = `${state.shown} videos, ${state.seen.size} distinct`;
  document.body.dataset.pages = String(state.pages);
}

async function loadPage({ force = false, label = "" } = {}) {
  const size = state.config.page_size;
  const query = `max_results=${size}${force ? "&force_refresh=true" : ""}`;
  const { response, body } = await callApi(
    `/api/v1/video/recommendations/${encodeURIComponent(state.config.user_id)}?${query}`,
  );
  if (response.status === 429 && force) {
    const secs = Number(response.headers.get("retry-after")) || FORCE_REFRESH_COOLDOWN_MS / 1000;
    state.cooldownUntil = Date.now() + secs * 1000;
    return false;
  }
  if (!response.ok || !body || !body.success) {
    say(`The feed could not be loaded: ${errorText(response, body)}`);
    return true;
  }
  if (force) state.cooldownUntil = Date.now() + FORCE_REFRESH_COOLDOWN_MS;
  showPage(body, label);
  say(`Page ${state.pages}: ${body.count} videos (${body.meta.cache_status}).`);
  return true;
}

async function updateQuota() {
  const { response, body } = await callApi("/api/v1/quota");
  if (!response.ok || !body || !body.success) {
    $("quota-state").textContent = `Quota unavailable: ${errorText(response, body)}`;
    return;
  }
  const quota = $("quota");
  for (const [name, bucket] of [["units", body.units], ["searches", body.searches]]) {
    const meter = $(`${name}-meter`);
    meter.max = Math.max(bucket.limit, 1);
    meter.value = bucket.used;
    meter.high = bucket.limit * 0.8;
    $(`${name}-text`).textContent = `${bucket.used} used · ${bucket.left} left of ${bucket.limit}`;
    quota.dataset[`${name}Used`] = String(bucket.used);
    quota.dataset[`${name}Left`] = String(bucket.left);
    quota.dataset[`${name}Limit`] = String(bucket.limit);
  }
  $("quota-day").textContent = `(${body.day}, Pacific)`;
  $("quota-state").textContent = `State: ${body.quota_state}.`;
  $("quota-resets").textContent = `Resets ${new Date(body.resets_at).toLocaleString()}.`;
  quota.dataset.updatedAt = String(Date.now());
}

async function withBusy(task) {
  if (state.busy) return;
  state.busy = true;
  $("refresh").disabled = true;
  try {
    await task();
  } catch (e) {
    say(`The API could not be reached: ${e.message}`);
  } finally {
    state.busy = false;
    $("refresh").disabled = false;
  }
  updateQuota().catch((e) => {
    $("quota-state").textContent = `Quota unavailable: ${e.message}`;
  });
}

function refresh() {
  return withBusy(() => loadPage());
}

// A watch is recorded at once; the forced refresh that shows its effect waits out the
// 30-second cooldown (counted down here) instead of being refused.
async function watched(video, li, button) {
  button.disabled = true;
  const { response, body } = await callApi(
    `/api/v1/video/history/${encodeURIComponent(state.config.user_id)}`,
    {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        events: [{ video_id: video.video_id, watch_seconds: video.duration_secs || 60 }],
      }),
    },
  );
  if (response.status !== 202) {
    button.disabled = false;
    say(`The watch was not recorded: ${errorText(response, body)}`);
    return;
  }
  li.classList.add("watched");
  button.textContent = "Watched ✓";
  state.pendingForce = video;
  forceWhenAllowed();
}

function forceWhenAllowed() {
  clearTimeout(state.countdown);
  const video = state.pendingForce;
  if (!video) return;
  const wait = state.cooldownUntil - Date.now();
  if (wait > 0 || state.busy) {
    const secs = Math.max(1, Math.ceil(wait / 1000));
    say(`Watch of “${video.title}” recorded. Forced refresh in ${secs} s (one per 30 s).`);
    state.countdown = setTimeout(forceWhenAllowed, Math.min(Math.max(wait, 200), 1000));
    return;
  }
  state.pendingForce = null;
  withBusy(async () => {
    const done = await loadPage({ force: true, label: `after watching “${video.title}”` });
    if (!done) {
      state.pendingForce = video;
      setTimeout(forceWhenAllowed, 0);
    }
  });
}

async function start() {
  $("refresh").addEventListener("click", refresh);
  $("quota-update").addEventListener("click", () => updateQuota().catch((e) => say(e.message)));
  const response = await fetch("/config.json");
  state.config = await response.json();
  $("user").textContent = state.config.user_id;
  $("source").textContent =
    state.config.youtube === "fake" ? "the fake YouTube (offline)" : "the YouTube Data API";
  await refresh();
  setInterval(() => updateQuota().catch(() => {}), 30_000);
}

document.addEventListener("DOMContentLoaded", () => {
  start().catch((e) => say(`The demo could not start: ${e.message}`));
});
