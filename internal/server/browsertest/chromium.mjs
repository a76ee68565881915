// chromium.mjs is what the browser tests' scripts share: Debian's Chromium
// (CHROMIUM, default /usr/bin/chromium), driven by playwright-core with a
// fresh profile and nothing that would reach the network on its own.
import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// withChromium runs run(context) in a new browser of that viewport size,
// adds what it throws to failures, and closes the browser and removes its
// profile whatever happens.
export async function withChromium(viewport, failures, run) {
  const userDataDir = mkdtempSync(join(tmpdir(), "plugboard-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport,
  });
  try {
    await run(context);
  } catch (err) {
    failures.push(`error: ${err && err.stack ? err.stack : err}`);
  } finally {
    await context.close();
    rmSync(userDataDir, { recursive: true, force: true });
  }
}
