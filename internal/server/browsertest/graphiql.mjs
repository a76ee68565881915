// graphiql.mjs drives a real Chromium through GraphiQL on a running
// plugboard and fails when the page does not work offline:
//
//   node graphiql.mjs --url http://127.0.0.1:PORT/graphql --screenshot out.png \
//     [--token TOKEN]       put TOKEN into the headers editor before the query
//     [--expect-headers S]  the headers editor must start with exactly S
//     [--expect-hint]       the "where the token goes" line must show
//     [--expect-role ROLE]  the query's viewer.role must be ROLE
//
// It waits until GraphiQL has rendered its editors (no "Loading…"), opens
// and closes the settings dialog, runs `{ viewer { role } }` by clicking
// GraphiQL's run button and reads the result from the response pane. The run fails on any request to another
// origin than the server's (such requests are aborted, never sent), on any
// console error, page error or Content-Security-Policy violation. It prints
// one JSON line with what it saw.
//
// Chromium is Debian's (CHROMIUM, default /usr/bin/chromium), driven by
// playwright-core; Playwright's own browser downloads are not used.
import { parseArgs } from "node:util";
import { withChromium } from "./chromium.mjs";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    screenshot: { type: "string" },
    token: { type: "string" },
    "expect-headers": { type: "string" },
    "expect-hint": { type: "boolean", default: false },
    "expect-role": { type: "string" },
  },
});
if (!opt.url) {
  console.error("usage: node graphiql.mjs --url URL [--screenshot FILE] ...");
  process.exit(2);
}

const origin = new URL(opt.url).origin;
const failures = [];
const requests = [];
// What the page showed, for the report line.
const seen = {};

await withChromium({ width: 1280, height: 800 }, failures, run);

// Tokens stay out of the report.
const report = JSON.stringify({ ok: failures.length === 0, failures, requests, seen });
console.log(report.replace(/pb_[A-Za-z]+_[A-Za-z0-9_-]+/g, "pb_…"));
process.exit(failures.length === 0 ? 0 : 1);

async function run(context) {
  // Every request goes through here: one to another origin is recorded as
  // a failure and aborted, so nothing ever leaves the machine.
  await context.route("**/*", (route) => {
    const u = route.request().url();
    requests.push(u);
    if (!u.startsWith("data:") && new URL(u).origin !== origin) {
      failures.push(`request to another host: ${u}`);
      return route.abort("blockedbyclient");
    }
    return route.continue();
  });
  const page = context.pages()[0] || (await context.newPage());
  await page.exposeFunction("__plugboardCSPViolation", (v) => {
    failures.push(`CSP violation: ${v}`);
  });
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      window.__plugboardCSPViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
    });
  });
  page.on("console", (m) => {
    if (m.type() === "error") failures.push(`console error: ${m.text()}`);
  });
  page.on("pageerror", (e) => failures.push(`page error: ${e.message}`));
  page.on("requestfailed", (r) => {
    if (new URL(r.url()).origin === origin) failures.push(`request failed: ${r.url()} ${r.failure()?.errorText}`);
  });

  const res = await page.goto(opt.url, { waitUntil: "load" });
  seen.status = res.status();
  seen.csp = res.headers()["content-security-policy"] || "";
  if (!seen.csp.includes("default-src 'none'")) failures.push(`no strict CSP header: ${seen.csp}`);

  await rendered(page);
  seen.hint = await hintText(page);
  if (opt["expect-hint"] && !seen.hint.includes("plugboard tokens create --role admin")) {
    failures.push(`no token hint on the page: ${JSON.stringify(seen.hint)}`);
  }
  if (!opt["expect-hint"] && seen.hint) failures.push(`unexpected token hint: ${seen.hint}`);

  await openDialog(page);
  seen.headers = await headersEditor(page, opt.token);
  if (opt["expect-headers"] !== undefined && seen.headers !== opt["expect-headers"]) {
    failures.push(`headers editor: got ${JSON.stringify(seen.headers)}, want ${JSON.stringify(opt["expect-headers"])}`);
  }
  seen.result = await runQuery(page, "{ viewer { role } }");
  const role = seen.result?.data?.viewer?.role;
  if (opt["expect-role"] && role !== opt["expect-role"]) {
    failures.push(`viewer.role: got ${JSON.stringify(role)} in ${JSON.stringify(seen.result)}`);
  }
  if (opt.screenshot) await page.screenshot({ path: opt.screenshot });
}

// rendered waits until GraphiQL's query editor is on the page and the
// "Loading…" placeholder is gone.
async function rendered(page) {
  await page.waitForSelector(".graphiql-container .graphiql-query-editor .CodeMirror", { timeout: 30000 });
  await page.waitForSelector(".graphiql-execute-button", { timeout: 30000 });
  if ((await page.locator(".loading").count()) > 0) failures.push("still showing Loading…");
}

// openDialog opens and closes GraphiQL's settings dialog: it adds a
// <style> element, allowed only through the page's style nonce.
async function openDialog(page) {
  await page.getByRole("button", { name: "Open settings dialog" }).click();
  await page.getByRole("dialog").waitFor({ state: "visible" });
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
}

async function hintText(page) {
  const hint = page.locator("#plugboard-hint");
  if ((await hint.count()) === 0 || !(await hint.isVisible())) return "";
  return (await hint.innerText()).trim();
}

// headersEditor opens the Headers tab, returns its text and, when token is
// set, replaces it with that token's Authorization header.
async function headersEditor(page, token) {
  await page.getByRole("button", { name: "Headers" }).click();
  const cm = page.locator(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror").first();
  await cm.waitFor({ state: "visible" });
  const text = await cm.evaluate((el) => el.CodeMirror.getValue());
  if (token) {
    const h = JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2);
    await cm.evaluate((el, v) => el.CodeMirror.setValue(v), h);
  }
  return text;
}

// runQuery puts query into the query editor, clicks the run button and
// returns the response pane's JSON.
async function runQuery(page, query) {
  const editor = page.locator(".graphiql-query-editor .CodeMirror").first();
  await editor.evaluate((el, q) => el.CodeMirror.setValue(q), query);
  await page.locator(".graphiql-execute-button").click();
  const result = page.locator(".result-window .CodeMirror").first();
  await page.waitForFunction(
    () => {
      const el = document.querySelector(".result-window .CodeMirror");
      return el && el.CodeMirror.getValue().trim().startsWith("{");
    },
    null,
    { timeout: 30000 },
  );
  const text = await result.evaluate((el) => el.CodeMirror.getValue());
  try {
    return JSON.parse(text);
  } catch {
    failures.push(`response pane is not JSON: ${text}`);
    return null;
  }
}
