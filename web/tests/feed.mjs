// Drives the demo page in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core: no browser download) against the running demo, and checks what a
// person would see. Run by tests/integration/tests/demo_browser.rs, which starts the
// demo stack and passes:
//   PAGE_URL           the demo page (its own origin; the API is another one)
//   FAKE_COUNTERS_URL  the fake YouTube's /admin/counters (its own metering)
//   SCREENSHOT         where to save the screenshot (PNG)
//   CHROMIUM           the browser binary (default /usr/bin/chromium)
// Prints one JSON report line on stdout; exits non-zero with the reason on any failure.
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { chromium } from "playwright-core";

const PAGE_URL = process.env.PAGE_URL;
const FAKE_COUNTERS_URL = process.env.FAKE_COUNTERS_URL;
const SCREENSHOT = process.env.SCREENSHOT;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const PAGE_SIZE = 10;
const REFRESHES = 3;
const WAIT = 60_000;

for (const [name, value] of Object.entries({ PAGE_URL, FAKE_COUNTERS_URL, SCREENSHOT })) {
  if (!value) {
    console.error(`${name} is not set`);
    process.exit(2);
  }
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

const consoleErrors = [];
const failedRequests = [];
const badResponses = [];
const report = { timings_ms: {} };
const t0 = Date.now();
const lap = (name) => (report.timings_ms[name] = Date.now() - t0);

let browser;
try {
  // Playwright gives each launch a fresh, empty profile directory of its own (and refuses
  // a --user-data-dir argument), removed on close.
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    chromiumSandbox: false,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  report.browser = browser.version();
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(`${m.text()} (${m.location().url})`);
  });
  page.on("pageerror", (e) => consoleErrors.push(`uncaught: ${e.message}`));
  page.on("requestfailed", (r) => failedRequests.push(`${r.url()}: ${r.failure()?.errorText}`));
  page.on("response", (r) => {
    if (r.status() >= 400) badResponses.push(`${r.status()} ${r.url()}`);
  });

  // The first page of 10, loaded on arrival.
  await page.goto(PAGE_URL, { waitUntil: "load" });
  await page.waitForSelector('body[data-pages="1"]', { timeout: WAIT });
  lap("first_page");

  // Three refreshes: the first by keyboard (focus, Enter), the others by click.
  for (let n = 2; n <= REFRESHES + 1; n++) {
    const button = page.locator("#refresh");
    await button.waitFor({ state: "visible" });
    await page.waitForFunction(() => !document.getElementById("refresh").disabled, null, { timeout: WAIT });
    if (n === 2) {
      await button.focus();
      await page.keyboard.press("Enter");
    } else {
      await button.click();
    }
    await page.waitForSelector(`body[data-pages="${n}"]`, { timeout: WAIT });
  }
  lap("refreshes");

  // Every thumbnail has finished loading (or failed) before counting.
  await page.waitForFunction(
    () => [...document.querySelectorAll(".card img")].every((i) => i.complete),
    null,
    { timeout: WAIT },
  );
  const cards = await page.$$eval(".card", (nodes) =>
    nodes.map((n) => {
      const img = n.querySelector("img");
      return {
        id: n.dataset.videoId,
        page: n.closest(".page").querySelector("h3").id,
        seen: n.closest(".page").classList.contains("seen"),
        loaded: img.complete && img.naturalWidth > 0,
        alt: img.alt,
        src: img.src,
        title: n.querySelector(".title").textContent.trim(),
        channel: n.querySelector(".channel").textContent.trim(),
        reason: n.querySelector(".reason").textContent.replace("Why:", "").trim(),
      };
    }),
  );
  const ids = new Set(cards.map((c) => c.id));
  const perPage = {};
  for (const c of cards) perPage[c.page] = (perPage[c.page] || 0) + 1;
  report.cards = cards.length;
  report.distinct = ids.size;
  report.images_loaded = cards.filter((c) => c.loaded).length;
  report.per_page = perPage;
  report.seen_cards = cards.filter((c) => c.seen).length;
  report.thumbnail_hosts = [...new Set(cards.map((c) => new URL(c.src).host))];
  report.shown_text = await page.textContent("#shown");
  check(cards.length === PAGE_SIZE * (REFRESHES + 1), `expected ${PAGE_SIZE * (REFRESHES + 1)} cards, found ${cards.length}`);
  check(ids.size === cards.length, `a video was repeated: ${cards.length} cards, ${ids.size} distinct`);
  check(Object.values(perPage).every((n) => n === PAGE_SIZE), `pages of ${PAGE_SIZE}: ${JSON.stringify(perPage)}`);
  check(report.images_loaded === cards.length, `images that did not load: ${cards.filter((c) => !c.loaded).map((c) => c.src).join(", ")}`);
  check(report.seen_cards === PAGE_SIZE * REFRESHES, `only the newest page is not greyed: ${report.seen_cards} seen cards`);
  for (const c of cards) {
    check(c.title && c.channel && c.reason && c.reason !== "–", `a card lacks its title, channel or reason: ${JSON.stringify(c)}`);
    check(c.alt.includes(c.title), `alt text of ${c.id} does not name its video: ${c.alt}`);
  }
  check(await page.locator(".repeat").count() === 0, "a card is marked REPEATED");

  // The meter's figures are the fake's own count. Warms may still be spending for a
  // moment after the pages: read the fake, update the meter, read the fake again; the
  // figures must agree while the fake's stand still.
  const fakeCounters = async () => {
    const r = await fetch(FAKE_COUNTERS_URL);
    check(r.ok, `fake counters: HTTP ${r.status}`);
    return r.json();
  };
  const deadline = Date.now() + WAIT;
  let meter;
  let fake;
  for (;;) {
    const before = await fakeCounters();
    const updated = await page.$eval("#quota", (q) => q.dataset.updatedAt || "0");
    await page.click("#quota-update");
    await page.waitForFunction((u) => (document.getElementById("quota").dataset.updatedAt || "0") !== u, updated, { timeout: WAIT });
    meter = await page.$eval("#quota", (q) => ({
      units_used: Number(q.dataset.unitsUsed),
      units_left: Number(q.dataset.unitsLeft),
      units_limit: Number(q.dataset.unitsLimit),
      searches_used: Number(q.dataset.searchesUsed),
      searches_left: Number(q.dataset.searchesLeft),
      searches_limit: Number(q.dataset.searchesLimit),
      units_text: document.getElementById("units-text").textContent,
      searches_text: document.getElementById("searches-text").textContent,
    }));
    fake = await fakeCounters();
    const still = before.units_used === fake.units_used && before.searches_used === fake.searches_used;
    if (still && meter.units_used === fake.units_used && meter.searches_used === fake.searches_used) break;
    check(Date.now() < deadline, `the meter (${JSON.stringify(meter)}) never matched the fake's counters (${fake.units_used} units, ${fake.searches_used} searches)`);
    await new Promise((r) => setTimeout(r, 1000));
  }
  report.meter = meter;
  report.fake = { units_used: fake.units_used, searches_used: fake.searches_used, day: fake.day };
  check(meter.units_used > 0, "the meter shows no units spent: the warm spent nothing?");
  check(meter.units_left === meter.units_limit - meter.units_used, `units left: ${JSON.stringify(meter)}`);
  check(meter.searches_left === meter.searches_limit - meter.searches_used, `searches left: ${JSON.stringify(meter)}`);
  check(meter.units_text.startsWith(`${fake.units_used} used · `), `the meter reads ${meter.units_text}`);
  lap("meter");

  // Tall enough to show the newest page and, greyed below it, the start of the one before.
  await page.setViewportSize({ width: 1280, height: 1320 });
  await page.evaluate(() => window.scrollTo(0, 0));
  mkdirSync(dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  await page.setViewportSize({ width: 1280, height: 900 });
  report.screenshot = SCREENSHOT;

  // A watch: recorded, then a forced refresh whose page appears (marked refreshed).
  const newest = page.locator(".page:not(.seen) .card").first();
  const watchedId = await newest.getAttribute("data-video-id");
  await newest.locator("button.watch").click();
  await page.waitForSelector(`body[data-pages="${REFRESHES + 2}"]`, { timeout: WAIT });
  const refreshedHeading = await page.textContent(".page:not(.seen) h3");
  check(/refreshed/.test(refreshedHeading) && refreshedHeading.includes("after watching"), `the page after a watch: ${refreshedHeading}`);
  check(await page.locator(`.card.watched[data-video-id="${watchedId}"]`).count() === 1, "the watched card is not marked");
  // A second watch within the cooldown waits for it instead of being refused.
  await page.locator(".page:not(.seen) .card button.watch").first().click();
  await page.waitForFunction(() => /Forced refresh in \d+ s/.test(document.getElementById("message").textContent), null, { timeout: WAIT });
  report.after_watch = { heading: refreshedHeading, message: await page.textContent("#message") };
  const allIds = await page.$$eval(".card", (n) => n.map((c) => c.dataset.videoId));
  check(new Set(allIds).size === allIds.length, "the forced refresh repeated a video");
  lap("watch");

  // The API's document, from the same page, rendered locally.
  await page.click("text=API document (OpenAPI)");
  await page.waitForSelector(".opblock-summary-path", { timeout: WAIT });
  const paths = await page.$$eval(".opblock-summary-path", (n) => n.map((p) => p.textContent.trim()));
  report.docs_operations = paths;
  for (const p of ["/api/v1/quota", "/api/v1/video/recommendations/{user_id}", "/api/v1/video/history/{user_id}", "/api/v1/health"]) {
    check(paths.some((x) => x.replace(/\u200b/g, "") === p), `the rendered document lacks ${p}: ${paths.join(", ")}`);
  }
  lap("docs");

  report.console_errors = consoleErrors;
  report.failed_requests = failedRequests;
  report.bad_responses = badResponses;
  check(consoleErrors.length === 0, `console errors: ${consoleErrors.join(" | ")}`);
  check(failedRequests.length === 0, `failed requests: ${failedRequests.join(" | ")}`);
  check(badResponses.length === 0, `error responses: ${badResponses.join(" | ")}`);
  report.ok = true;
  console.log(JSON.stringify(report));
} catch (e) {
  report.ok = false;
  report.error = e.message;
  report.console_errors = consoleErrors;
  report.failed_requests = failedRequests;
  report.bad_responses = badResponses;
  console.log(JSON.stringify(report));
  console.error(`browser test failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  if (browser) await browser.close();
}
