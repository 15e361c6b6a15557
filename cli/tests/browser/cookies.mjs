// HOSTILE row 42: another local server (an app of the node, say) has loaded the browser with
// about 240 KB of cookies for `localhost`, which the browser sends to every port of the host,
// the dashboard's included. The owner still logs in and uses the dashboard.
import { assert, env, at, launch, open, login, noProblems, step } from "./lib.mjs";

const browser = await launch();
try {
  const { context, page } = await open(browser);
  step("60 cookies of 4,000 bytes for localhost, as any local server may set them");
  const cookies = Array.from({ length: 60 }, (_, i) => ({
    name: `theirs${i}`,
    value: "x".repeat(4000),
    domain: "localhost",
    path: "/",
    expires: Math.floor(Date.now() / 1000) + 365 * 24 * 3600,
  }));
  await context.addCookies(cookies);
  assert.equal((await context.cookies("http://localhost/")).length, 60);

  step("the owner logs in and sees the node's apps");
  await login(page);
  const answer = await page.goto(at(page, "/"));
  assert.equal(answer.status(), 200);
  const app = env("QYVOL_APP");
  await page.goto(at(page, `/apps/${app}`));
  assert.equal(await page.title(), `${app} · Qyvol`);

  noProblems(page);
  console.log("cookies: ok");
} finally {
  await browser.close();
}
