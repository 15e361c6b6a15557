// An app's page shows what it keeps and reads: its buckets with their keys and bytes, the
// names of its variables and secrets, never a secret's or a variable's value, and a value
// with terminal escapes nowhere.
import { assert, env, at, launch, open, login, until, noProblems, step } from "./lib.mjs";

const browser = await launch();
try {
  const { page } = await open(browser, { locale: "en-US" });
  await login(page);

  step("the counter's page names its bucket, variables and secret");
  await page.goto(at(page, "/apps/counter"));
  await until(async () => (await page.locator("#buckets").textContent()).includes("counts"), "the buckets");
  const buckets = (await page.locator("#buckets").textContent()).replace(/\s+/g, " ").trim();
  assert.equal(buckets, "counts — 1 keys, 14 B");
  const config = (await page.locator("#config-vars code").allTextContents()).sort();
  assert.deepEqual(config, ["greeting", "name", "note"]);
  assert.deepEqual(await page.locator("#secrets code").allTextContents(), ["admin_token"]);

  step("no value reaches the page");
  const html = await page.content();
  for (const value of [env("QYVOL_SECRET"), env("QYVOL_ENV_VALUE"), "Ana", "\u001b"]) {
    assert.ok(!html.includes(value), `the page shows ${JSON.stringify(value)}`);
  }
  step("an app with a health check shows how it is");
  await page.goto(at(page, "/apps"));
  const health = page.locator("tr", { hasText: "checked" }).locator("span.health");
  await until(async () => (await health.count()) === 1, "the health badge");
  assert.equal(await health.getAttribute("data-health"), "healthy");
  assert.equal((await health.textContent()).trim(), "healthy");

  noProblems(page);
  console.log("state: ok");
} finally {
  await browser.close();
}
