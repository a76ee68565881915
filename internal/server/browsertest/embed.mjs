// embed.mjs drives a real Chromium through plugboard's embedded wizard on
// a vendor's page of another origin (see embed_test.go):
//
//   node embed.mjs --host http://localhost:P --plugboard http://127.0.0.1:Q \
//     --oauth http://127.0.0.1:R --instance ID --shots DIR --key K --key2 K2 \
//     --hidden URL --forbid "S1\nS2..."
//
// It fails on any request to another origin than the host page's,
// plugboard's or (from the sign-in popup only) the OAuth provider's, on any
// console error, page error or CSP violation, on any axe-core violation,
// and when a --forbid string shows in a GraphQL answer or in the wizard's
// text. It prints one JSON line with what it saw.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { withChromium } from "./chromium.mjs";

const { values: opt } = parseArgs({
  options: {
    host: { type: "string" }, plugboard: { type: "string" }, oauth: { type: "string" },
    instance: { type: "string" }, shots: { type: "string" }, key: { type: "string" },
    key2: { type: "string" }, hidden: { type: "string" }, forbid: { type: "string", default: "" },
    bench: { type: "string" },
  },
});
const hostOrigin = new URL(opt.host).origin;
const pbOrigin = new URL(opt.plugboard).origin;
const oauthOrigin = opt.oauth;
const forbid = opt.forbid.split("\n").filter(Boolean);
const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const failures = [];
process.on("unhandledRejection", (err) => failures.push(`unhandled: ${err && err.stack ? err.stack : err}`));
const seen = { steps: [], axe: {} };
const bodies = [];

await withChromium({ width: 1280, height: 900 }, failures, run);
const report = JSON.stringify({ ok: failures.length === 0, failures, seen });
console.log(report.replace(/eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g, "<jwt>"));
process.exit(failures.length === 0 ? 0 : 1);

function check(cond, what) {
  if (!cond) failures.push(what);
  return cond;
}

async function guard(context, page) {
  await context.route("**/*", (route) => {
    const req = route.request();
    const u = req.url();
    const quiet = (p) => p.catch(() => {}); // the page may be gone meanwhile
    if (u.startsWith("data:") || u === "about:blank") return quiet(route.continue());
    const o = new URL(u).origin;
    let fromPopup = false;
    try { fromPopup = req.frame().page() !== page; } catch { /* a service worker or a closed popup */ }
    if (o === pbOrigin || o === hostOrigin || (o === oauthOrigin && fromPopup)) return quiet(route.continue());
    failures.push(`request to another host: ${u}`);
    return quiet(route.abort("blockedbyclient"));
  });
  await context.exposeBinding("__pbCSP", (_src, v) => failures.push(`CSP violation: ${v}`));
  await context.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__pbCSP(`${location.origin}: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  const watch = (p) => {
    p.on("console", (m) => { if (m.type() === "error") failures.push(`console error: ${m.text()}`); });
    p.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  };
  watch(page);
  context.on("page", watch);
  context.on("response", async (res) => {
    if (!res.url().startsWith(pbOrigin + "/graphql")) return;
    try { bodies.push(await res.text()); } catch { /* the page went away */ }
  });
}

// events returns the host page's recorded events named name.
async function events(page, name) {
  return page.evaluate((n) => window.__events.filter((e) => e.name === n), name);
}
async function waitEvent(page, name, count = 1) {
  await page.waitForFunction(([n, c]) => window.__events && window.__events.filter((e) => e.name === n).length >= c,
    [name, count], { timeout: 30000 });
  const list = await events(page, name);
  return list[list.length - 1].payload;
}
// frameOf is the wizard frame of the iframe at sel, once it has loaded.
async function frameOf(page, sel) {
  const f = await (await page.locator(sel).elementHandle()).contentFrame();
  await f.waitForSelector("#wizard");
  return f;
}
function wizardFrame(page) { return frameOf(page, "#connections iframe"); }

async function axe(frame, name) {
  await frame.evaluate(axeSource);
  const r = await frame.evaluate(() => window.axe.run(document, { iframes: false, runOnly: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] }));
  seen.axe[name] = { violations: r.violations.length, passes: r.passes.length };
  for (const v of r.violations) {
    failures.push(`axe ${name}: ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
  }
}

async function shot(page, file) {
  await page.waitForTimeout(150); // let the iframe take its new height
  await page.screenshot({ path: join(opt.shots, file), fullPage: true });
  seen.steps.push(`screenshot ${file}`);
}

// popupConnect clicks a Connect or Reconnect button and lets the local
// provider answer in the popup.
async function popupConnect(page, button) {
  const [popup] = await Promise.all([page.context().waitForEvent("page", { timeout: 30000 }), button.click()]);
  await popup.waitForEvent("close", { timeout: 30000 });
}

async function run(context) {
  const page = context.pages()[0] || (await context.newPage());
  await guard(context, page);
  if (opt.bench) { await bench(page, Number(opt.bench)); return; }
  await mountExpired(page);
  await apiKeyWithError(page);
  await connectSlack(page);
  await reconnectDisconnect(page);
  await connectDialog(page);
  await programmatic(page);
  await reloadAndLocales(page);
  const all = bodies.join("\n") + "\n" + (await (await wizardFrame(page)).locator("body").innerText());
  check(!(await (await wizardFrame(page)).locator("body").innerText()).includes("clientId"), "the wizard shows the client id");
  for (const s of forbid) check(!all.includes(s), `a secret or hidden input reached the browser: ${s.slice(0, 12)}…`);
  seen.graphqlAnswers = bodies.length;
}

// The host mounts with an expired token: the wizard asks getToken() for a
// fresh one and loads.
async function mountExpired(page) {
  await page.goto(opt.host + "/app?expired=1", { waitUntil: "load" });
  const ready = await waitEvent(page, "ready");
  check(ready.instanceID === opt.instance && ready.connections.length === 2 && ready.configured === false,
    `ready: ${JSON.stringify(ready)}`);
  const src = await page.locator("iframe").first().getAttribute("src");
  check(new URL(src).origin === pbOrigin && !src.includes("token"), `frame src: ${src}`);
  const f = await wizardFrame(page);
  const badges = await f.locator(".badge").allInnerTexts();
  check(JSON.stringify(badges) === JSON.stringify(["Not set up", "Not set up"]), `status labels: ${badges}`);
  const icons = await f.locator(".icon img").count();
  seen.icons = icons;
  check(icons === 2, `provider icons: ${icons}`);
  await axe(f, "loaded");
  seen.steps.push("mounted with an expired token");
}

async function apiKeyWithError(page) {
  const f = await wizardFrame(page);
  const card = f.locator('[data-slot="asana"]');
  const input = card.getByLabel("Personal access token");
  await input.fill("Bearer " + opt.key);
  await input.press("Enter");
  const err = await waitEvent(page, "error");
  check(err.slotKey === "asana" && err.userErrors[0].field.join(".") === "values.apiKey" && err.userErrors[0].code,
    `error event: ${JSON.stringify(err)}`);
  await f.waitForSelector('[data-slot="asana"] input[aria-invalid="true"]');
  const described = (await input.getAttribute("aria-describedby")).split(" ");
  const errText = await f.locator("#" + described[described.length - 1]).innerText();
  check(errText.length > 10, `the field's error line: ${errText}`);
  await f.waitForFunction(() => document.getElementById("pb-alert").textContent.length > 0);
  check(await input.evaluate((e) => document.activeElement === e), "focus is not on the invalid field");
  await axe(f, "field error");
  await shot(page, "embed-error-1280.png");
  await input.fill(opt.key);
  await input.press("Enter");
  const saved = await waitEvent(page, "credential.saved");
  check(saved.slotKey === "asana" && saved.status === "ACTIVE" && saved.credentialID, `credential.saved: ${JSON.stringify(saved)}`);
  await f.waitForSelector('[data-slot="asana"] .badge[data-status="ACTIVE"]');
  check((await card.locator("[data-note=ok]").innerText()).includes("Saved"), "no success note on Asana");
  seen.steps.push("API key: field error, then saved");
}

async function connectSlack(page) {
  const f = await wizardFrame(page);
  const btn = f.locator('[data-slot="slack"] button[data-action="connect"]');
  check((await btn.innerText()) === "Connect Slack", `connect button: ${await btn.innerText()}`);
  await popupConnect(page, btn);
  const c = await waitEvent(page, "credential.connected");
  check(c.slotKey === "slack" && c.status === "ACTIVE", `credential.connected: ${JSON.stringify(c)}`);
  const conf = await waitEvent(page, "instance.configured");
  check(conf.instanceID === opt.instance, `instance.configured: ${JSON.stringify(conf)}`);
  await f.waitForSelector("[data-finish]");
  await f.waitForSelector('[data-slot="slack"] button[data-action="reconnect"]');
  await f.waitForSelector('[data-slot="slack"] button[data-action="disconnect"]');
  await axe(f, "configured");
  await shot(page, "embed-finish-1280.png");
  seen.steps.push("Slack connected; instance configured");
}

async function reconnectDisconnect(page) {
  const f = await wizardFrame(page);
  await popupConnect(page, f.locator('[data-slot="slack"] button[data-action="reconnect"]'));
  await waitEvent(page, "credential.connected", 2);
  await f.locator('[data-slot="slack"] button[data-action="disconnect"]').click();
  const d = await waitEvent(page, "credential.disconnected");
  check(d.slotKey === "slack" && d.status === "PENDING", `credential.disconnected: ${JSON.stringify(d)}`);
  await f.waitForSelector('[data-slot="slack"] button[data-action="connect"]');
  const badge = await f.locator('[data-slot="slack"] .badge').innerText();
  check(badge === "Not connected yet", `Slack after Disconnect: ${badge}`);
  check((await f.locator("[data-finish]").count()) === 0, "the finish step shows after Disconnect");
  seen.steps.push("Reconnect, then Disconnect");
}

// Plugboard.connect: one connection's Connect flow in a dialog.
async function connectDialog(page) {
  await page.evaluate((id) => {
    window.__dialog = Plugboard.connect({ instanceID: id, slotKey: "slack", getToken: window.getToken, onEvent: window.record });
  }, opt.instance);
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  const df = await frameOf(page, "[role=dialog] iframe");
  const btn = df.locator('button[data-action="connect"]');
  await btn.waitFor();
  check((await df.locator("[data-slot]").count()) === 1, "the dialog shows more than one connection");
  await popupConnect(page, btn);
  await waitEvent(page, "credential.connected", 3);
  await df.waitForSelector("[data-finish]");
  await axe(df, "connect dialog");
  await df.locator('button[data-action="done"]').click();
  const result = await page.evaluate(() => window.__dialog);
  check(result.connected === true && result.credentialID, `Plugboard.connect: ${JSON.stringify(result)}`);
  check((await page.getByRole("dialog").count()) === 0, "the dialog stays open");
  // The mounted wizard follows: the instance is configured again.
  await waitEvent(page, "instance.configured", 2);
  await (await wizardFrame(page)).waitForSelector("[data-finish]");
  seen.steps.push("Plugboard.connect dialog");
}

async function programmatic(page) {
  const set = (values) => page.evaluate(([id, v]) => Plugboard.setConnectionValues(id, "asana", v), [opt.instance, values]);
  const bad = await set({ apiKey: "Bearer " + opt.key2 });
  check(bad.userErrors.length === 1 && bad.userErrors[0].field.join(".") === "values.apiKey" && bad.userErrors[0].code,
    `setConnectionValues with a bad key: ${JSON.stringify(bad)}`);
  // The same field error shows on the form.
  const f = await wizardFrame(page);
  await f.waitForSelector('[data-slot="asana"] input[aria-invalid="true"]');
  const hidden = await set({ baseUrl: opt.hidden });
  check(hidden.userErrors.length > 0 && hidden.userErrors[0].field.join(".") === "values.baseUrl" && !hidden.credential,
    `setConnectionValues of a hidden input: ${JSON.stringify(hidden)}`);
  const ok = await set({ apiKey: opt.key2 });
  check(ok.userErrors.length === 0 && ok.credential && ok.credential.status === "ACTIVE", `setConnectionValues: ${JSON.stringify(ok)}`);
  const saved = (await events(page, "credential.saved")).filter((e) => e.payload.slotKey === "asana");
  check(saved.length === 2, `credential.saved events: ${saved.length}`);
  seen.programmatic = { bad: bad.userErrors[0].code, hidden: hidden.userErrors[0].code };
  seen.steps.push("setConnectionValues");
}

async function reloadAndLocales(page) {
  await page.reload({ waitUntil: "load" });
  const ready = await waitEvent(page, "ready");
  check(ready.configured === true && ready.connections.every((c) => c.status === "ACTIVE"), `ready after reload: ${JSON.stringify(ready)}`);
  const f = await wizardFrame(page);
  await f.waitForSelector("[data-finish]");
  await shot(page, "embed-1280.png");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot(page, "embed-390.png");
  await axe(await wizardFrame(page), "390 px");
  await page.goto(opt.host + "/app?locale=de", { waitUntil: "load" });
  await waitEvent(page, "ready");
  const de = await wizardFrame(page);
  const badges = await de.locator(".badge").allInnerTexts();
  check(badges.every((b) => b === "Verbunden"), `German status labels: ${badges}`);
  check((await de.evaluate(() => document.documentElement.lang)) === "de", "the frame's lang is not de");
  await shot(page, "embed-390-de.png");
  seen.steps.push("reload, 390 px, German");
}

// bench measures the time from navigation to the wizard's ready event,
// first with an empty cache, then over n reloads; it reports the median.
async function bench(page, n) {
  const once = async () => {
    await page.goto(opt.host + "/app", { waitUntil: "commit" });
    await waitEvent(page, "ready");
    return page.evaluate(() => window.__events.find((e) => e.name === "ready").at);
  };
  const cold = await once();
  const warm = [];
  for (let i = 0; i < n; i++) warm.push(await once());
  warm.sort((a, b) => a - b);
  seen.bench = { coldMs: Math.round(cold), warmMedianMs: Math.round(warm[Math.floor(warm.length / 2)]),
    warmMinMs: Math.round(warm[0]), warmMaxMs: Math.round(warm[warm.length - 1]), runs: n };
}
