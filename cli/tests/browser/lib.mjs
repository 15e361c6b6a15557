// Shared by the dashboard's browser tests: Debian's chromium driven by playwright-core, the
// node under test (started by cli/tests/it/dashboard.rs, which passes its address and token),
// and axe-core. Each scenario is a script that exits non-zero on the first failed check.
import { chromium } from "playwright-core";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import assert from "node:assert/strict";

export { assert };

export const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these through cargo test (cli/tests/it/dashboard.rs)`);
  return v;
};

/// A page of the dashboard outside any session (the login page, say).
export const url = (path) => new URL(path, env("QYVOL_DASHBOARD")).toString();

/// A page of `page`'s session (its path starts `/s/<session>`), on the host it logged in at.
export const at = (page, path) => new URL(page.base + path, page.url()).toString();

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

/// A one-time login link, from the real `qyvol dashboard` of the node under test.
export function loginLink() {
  const out = execFileSync(env("QYVOL_BIN"), ["dashboard"], { encoding: "utf8" });
  const link = out.trim().split("\n").pop();
  assert.match(link, /^http:\/\/localhost:\d+\/login\/[0-9a-f]{64}\?v=[0-9a-f]{64}$/, out);
  return link;
}

/// Logs `page` in with a link from `qyvol dashboard`, as the README says; `page.base` is then
/// where its session's pages are.
export async function login(page) {
  await page.goto(loginLink());
  await page.waitForURL(/\/s\/[0-9a-f]{64}\/$/);
  page.base = new URL(page.url()).pathname.replace(/\/$/, "");
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
