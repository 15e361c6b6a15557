// Guest output and upload names are shown as text, never run: a guest that prints `<script>`,
// an `<img onerror>` and ANSI/OSC escapes (HOSTILE.md row 10), and a bundle uploaded under a
// file name made of markup.
import { assert, env, at, launch, open, login, until, noProblems, step } from "./lib.mjs";
import { readFileSync } from "node:fs";

const browser = await launch();
try {
  const { page } = await open(browser);
  await login(page);
  const app = env("QYVOL_HOSTILE_APP");

  step("the guest's markup and escapes arrive in the log as text");
  await page.goto(at(page, `/apps/${app}`));
  const texts = page.locator("#log .line .text");
  await until(async () => (await texts.count()) >= 3, "the guest's lines");
  const shown = await texts.allTextContents();
  assert.ok(shown.includes("<script>window.__pwned=1</script>"), JSON.stringify(shown));
  assert.ok(shown.includes('<img src=x onerror="window.__pwned=2">'), JSON.stringify(shown));
  assert.ok(shown.includes("\\u{1b}[31mred\\u{1b}]0;pwned-title\\u{7}"), JSON.stringify(shown));
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("#log script, #log img").count(), 0);
  assert.equal(await page.title(), `${app} · Qyvol`);

  step("an upload named with markup is shown as its name");
  await page.goto(at(page, "/deploy"));
  // (Chromium itself sends a `"` in a file name as %22, so the markup here has none.)
  const evil = "<img src=x onerror=window.__pwned=3>.qyvc";
  await page.setInputFiles("#file", {
    name: evil,
    mimeType: "application/octet-stream",
    buffer: readFileSync(env("QYVOL_BUNDLE")),
  });
  await page.fill("#name", "named-evil");
  await page.click("form.deploy button[type=submit]");
  await page.waitForURL(/\/apps\/named-evil$/);
  const source = page.locator("#status dd code").filter({ hasText: "upload:" });
  assert.equal(await source.textContent(), `upload:${evil}`);
  await page.goto(at(page, "/"));
  await until(async () => (await page.locator("ol.events").textContent()).includes(`upload:${evil}`), "the deploy event");
  assert.equal(await page.evaluate(() => window.__pwned), undefined);
  assert.equal(await page.locator("main img").count(), 0);

  step("a request without the page's CSRF token changes nothing");
  const status = await page.evaluate(async (stop) => (await fetch(stop, { method: "POST" })).status, `${page.base}/ui/apps/${app}/stop`);
  assert.equal(status, 403);

  noProblems(page);
  console.log("hostile: ok");
} finally {
  await browser.close();
}
