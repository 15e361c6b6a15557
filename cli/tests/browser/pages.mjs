// The apps table of a node with more apps than a page holds (101, named app-000 to app-100 by
// cli/tests/it/dashboard.rs): one page at a time, saying which, paging forward and back, a new
// sort or filter starting again at the first page.
import { assert, at, launch, open, login, until, noProblems, step } from "./lib.mjs";

const browser = await launch();
try {
  const { page } = await open(browser);
  await login(page);
  const shown = () => page.locator("tr[data-app]").evaluateAll((rows) => rows.map((r) => r.dataset.app));

  step("the first page holds the first 100 apps by name and says how many there are");
  await page.goto(at(page, "/apps"));
  let names = await shown();
  assert.equal(names.length, 100);
  assert.deepEqual([names[0], names[99]], ["app-000", "app-099"]);
  assert.equal(await page.textContent("#page-range"), "1–100 de 101");
  assert.equal(await page.locator("#page-prev").count(), 0);

  step("«Siguiente» shows the rest, and the table's refresh asks for that page");
  await page.click("#page-next");
  await page.waitForURL(/[?&]page=2$/);
  assert.deepEqual(await shown(), ["app-100"]);
  assert.equal(await page.textContent("#page-range"), "101–101 de 101");
  assert.equal(await page.locator("#page-next").count(), 0);
  assert.match(await page.getAttribute("#apps", "hx-get"), /[?&]page=2$/);

  step("«Anterior» goes back");
  await page.click("#page-prev");
  await page.waitForURL((u) => !u.search.includes("page="));
  assert.equal((await shown())[0], "app-000");

  step("sorting by name the other way starts again at the first page, from the other end");
  await page.click("#sort-name");
  await page.waitForURL(/dir=desc/);
  names = await shown();
  assert.deepEqual([names.length, names[0], names[99]], [100, "app-100", "app-001"]);

  step("a filter that matches less than a page shows no pager");
  await page.fill("#q", "app-05");
  await until(async () => (await shown()).length === 10, "the filter to leave app-050 to app-059");
  assert.equal(await page.locator("nav.pages").count(), 0);
  noProblems(page);
} finally {
  await browser.close();
}
