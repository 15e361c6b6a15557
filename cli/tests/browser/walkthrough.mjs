// A new user's path through the dashboard: log in, deploy the http-hello example by uploading
// its .qyvc, find it in the apps table, open it, watch its log and request chart move as
// requests arrive, pause and search the log, stop it, start it, remove it. Takes the
// screenshots in docs/screenshots/ on the way.
import { assert, env, url, at, launch, open, loginLink, until, get, noProblems, step } from "./lib.mjs";
import { join } from "node:path";

const browser = await launch();
try {
  const { page } = await open(browser);
  const shots = env("QYVOL_SCREENSHOTS");

  step("the login page asks for no token: it says how to get a link");
  await page.goto(url("/login"));
  assert.equal(await page.locator("input").count(), 0);
  assert.equal(await page.textContent("pre code"), "qyvol dashboard");

  step("a link from qyvol dashboard logs in, and only once");
  const link = loginLink();
  await page.goto(link);
  await page.waitForURL(/\/s\/[0-9a-f]{64}\/$/);
  page.base = new URL(page.url()).pathname.replace(/\/$/, "");
  assert.equal(await page.textContent("h1"), "Resumen");
  const again = await open(browser);
  const used = await again.page.goto(link);
  assert.equal(used.status(), 401);
  assert.equal(await again.page.textContent("p.error"), "Ese enlace ya se usó o caducó: pide otro con qyvol dashboard.");
  await again.context.close();

  step("nothing a browser sends to other local ports opens the session: it keeps no cookie for it");
  const kept = (await page.context().cookies()).map((c) => c.name);
  assert.ok(!kept.includes("qyvol_session"), JSON.stringify(kept));

  step("deploy by uploading http-hello.qyvc");
  await page.click("nav >> text=Desplegar");
  await page.setInputFiles("#file", env("QYVOL_BUNDLE"));
  await page.fill("#name", "hello-web");
  await page.click("form.deploy button[type=submit]");
  await page.waitForURL(/\/apps\/hello-web$/);
  await page.waitForSelector("#status .badge[data-state=running]");

  step("it is in the apps table");
  await page.click("nav >> text=Aplicaciones");
  const row = page.locator("tr[data-app=hello-web]");
  await row.waitFor();
  assert.equal(await row.locator("td").nth(0).textContent(), "HTTP");
  assert.equal(await row.locator(".badge").getAttribute("data-state"), "running");
  assert.equal(await row.locator("td code").textContent(), "/hello/...");

  step("the table filters by name");
  await page.fill("#q", "nothing-like-it");
  await until(async () => (await page.locator("tr[data-app]").count()) === 0, "the filter to hide the app");
  assert.equal(await page.textContent("#apps p.empty"), "Ninguna app coincide.");
  await page.fill("#q", "hello");
  await row.waitFor();

  step("open it: its log grows as requests arrive");
  await row.locator("a").click();
  await page.waitForURL(/\/apps\/hello-web$/);
  for (const n of [1, 2, 3]) {
    const [status, body] = await get(`/hello/dash-${n}`);
    assert.equal(status, 200);
    assert.equal(body, `¡Hola desde Qyvol! GET /hello/dash-${n}\n`);
  }
  const lines = page.locator("#log .line:not([hidden]) .text");
  await until(async () => (await lines.allTextContents()).includes("GET /hello/dash-3"), "the third request's log line");
  const texts = await lines.allTextContents();
  assert.deepEqual(texts.filter((t) => t.startsWith("GET /hello/dash-")), [
    "GET /hello/dash-1",
    "GET /hello/dash-2",
    "GET /hello/dash-3",
  ]);
  assert.equal(await page.locator("#log .line.out").first().getAttribute("data-stream"), "stdout");

  step("the request chart moves under load");
  let load = true;
  const loader = (async () => {
    let i = 0;
    while (load) {
      await get(`/hello/load-${i++}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const rate = await until(async () => {
    const label = await page.locator("#charts figure").first().locator("svg").getAttribute("aria-label");
    const m = /req\/s ([0-9.]+)/.exec(label || "");
    return m && Number(m[1]) > 1 ? Number(m[1]) : null;
  }, "a request rate above 1/s in the chart");
  assert.ok(rate > 1);
  assert.ok((await page.locator("#charts polyline").count()) >= 2, "the rate and latency lines are drawn");

  step("screenshots of the app, light and dark");
  await page.setViewportSize({ width: 1280, height: 900 });
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(shots, `app-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: "light" });

  step("the overview counts the requests without a reload");
  await page.click("nav >> text=Resumen");
  const served = Number(await page.textContent("#served"));
  await until(async () => Number(await page.textContent("#served")) > served, "the served count to grow");
  for (const scheme of ["light", "dark"]) {
    await page.emulateMedia({ colorScheme: scheme });
    await page.screenshot({ path: join(shots, `overview-${scheme}.png`), fullPage: true });
  }
  await page.emulateMedia({ colorScheme: "light" });
  load = false;
  await loader;
  await page.goto(at(page, "/apps/hello-web"));
  await until(async () => (await lines.allTextContents()).includes("GET /hello/dash-3"), "the log to load again");

  step("pause holds new lines back; resume shows them");
  await page.click("#log-pause");
  assert.equal(await page.getAttribute("#log-pause", "aria-pressed"), "true");
  assert.equal(await page.textContent("#log-pause"), "Reanudar");
  await get("/hello/while-paused");
  await until(async () => /^1 /.test(await page.textContent("#log-held")), "the held count");
  assert.ok(!(await lines.allTextContents()).includes("GET /hello/while-paused"));
  await page.click("#log-pause");
  await until(async () => (await lines.allTextContents()).includes("GET /hello/while-paused"), "the held line");

  step("search shows only the matching lines");
  await page.fill("#log-search", "dash-2");
  assert.deepEqual(await lines.allTextContents(), ["GET /hello/dash-2"]);
  await page.fill("#log-search", "");

  step("stop: the state changes in place and the route stops answering");
  await page.click(".actions >> text=Detener");
  await page.waitForSelector("#status .badge[data-state=stopped]");
  assert.equal((await get("/hello/after-stop"))[0], 404);

  step("start: running and answering again");
  await page.click(".actions >> text=Iniciar");
  await page.waitForSelector("#status .badge[data-state=running]");
  assert.equal((await get("/hello/after-start"))[0], 200);

  step("remove, after confirming");
  let asked = "";
  page.once("dialog", (d) => {
    asked = d.message();
    d.accept();
  });
  await page.click(".actions >> text=Eliminar");
  await page.waitForURL(/\/apps$/);
  assert.equal(asked, "¿Eliminar esta app? Se borran su registro y su estado.");
  assert.equal(await page.locator("tr[data-app=hello-web]").count(), 0);
  assert.equal((await get("/hello/after-remove"))[0], 404);

  noProblems(page);
  console.log("walkthrough: ok");
} finally {
  await browser.close();
}
