// Shared by the dashboard's browser tests: Debian's chromium driven by playwright-core, the
// node under test (started by cli/tests/it/dashboard.rs, which passes its address and token),
// and axe-core. Each scenario is a script that exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import assert from "node:assert/strict";

export { assert };

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these through cargo test (cli/tests/it/dashboard.rs)`);
  return v;
};

export const url = (path) => new URL(path, env("QYVOL_DASHBOARD")).toString();

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
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
}

/// A fresh browser context (its own cookies) whose page fails the test on any uncaught error
/// or CSP violation.
export async function open(browser, options = {}) {
  const context = await browser.newContext({ locale: "es-ES", ...options });
  const page = await context.newPage();
  page.problems = [];
  page.on("pageerror", (e) => page.problems.push(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) {
      page.problems.push(`CSP: ${m.text()}`);
    }
  });
  page.setDefaultTimeout(15000);
  return { context, page };
}

export async function login(page, token = env("QYVOL_TOKEN")) {
  await page.goto(url("/"));
  await page.waitForURL(/\/login$/);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForURL((u) => !u.pathname.startsWith("/login"));
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/// axe-core's violations on the page as it is (run through the DevTools protocol, which the
/// page's CSP does not govern).
export async function axe(page) {
  await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  return result.violations.map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`);
}

export function noProblems(page) {
  assert.deepEqual(page.problems, [], "the page logged errors or CSP violations");
}

/// Polls `check` (an async function returning truthy) until it holds, for at most `ms`.
export async function until(check, what, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function get(path) {
  const r = await fetch(new URL(path, env("QYVOL_APPS")));
  return [r.status, await r.text()];
}

export function step(text) {
  console.log(`· ${text}`);
}
