// Every view, light and dark, passes axe-core; at a phone's width nothing runs off the side;
// the keyboard alone gets from the top of a page to an app.
import { assert, env, url, at, launch, open, login, axe, noProblems, step } from "./lib.mjs";

const app = env("QYVOL_APP");
const views = ["/", "/apps", `/apps/${app}`, "/images", "/deploy"];

const browser = await launch();
try {
  const anon = await open(browser);
  const { page } = await open(browser);
  await login(page);
  for (const scheme of ["light", "dark"]) {
    await anon.page.emulateMedia({ colorScheme: scheme });
    await anon.page.goto(url("/login"));
    step(`axe: /login (${scheme})`);
    assert.deepEqual(await axe(anon.page), [], `/login in ${scheme}`);
    await page.emulateMedia({ colorScheme: scheme });
    for (const view of views) {
      step(`axe: ${view} (${scheme})`);
      await page.goto(at(page, view));
      await page.waitForLoadState("networkidle").catch(() => {});
      if (view.startsWith("/apps/")) await page.waitForSelector("#charts figure");
      assert.deepEqual(await axe(page), [], `${view} in ${scheme}`);
    }
  }

  step("a phone's width: no page is wider than the screen");
  await page.setViewportSize({ width: 390, height: 844 });
  for (const view of views) {
    await page.goto(at(page, view));
    const [scroll, inner] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
    assert.ok(scroll <= inner, `${view} is ${scroll}px wide on a ${inner}px screen`);
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  step("the keyboard: skip link first, then through the menu to an app");
  await page.goto(at(page, "/apps"));
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  let reached = false;
  for (let i = 0; i < 30 && !reached; i++) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate((a) => document.activeElement.textContent === a && document.activeElement.tagName === "A", app);
  }
  assert.ok(reached, "Tab reaches the app's link");
  // The table refreshes itself every 2 s: focus stays on the link across a refresh.
  await page.evaluate(() => { document.getElementById("apps").dataset.old = "1"; });
  await page.waitForSelector("#apps:not([data-old])", { state: "attached" });
  assert.equal(await page.evaluate(() => document.activeElement.id), `app-${app}`);
  await page.keyboard.press("Enter");
  await page.waitForURL(new RegExp(`/apps/${app}$`));

  noProblems(anon.page);
  noProblems(page);
  console.log("a11y: ok");
} finally {
  await browser.close();
}
