// The images view: pull by reference from a real registry with its progress, see the image in
// the store, deploy it from there, and remove it after confirming.
import { assert, env, at, launch, open, login, until, noProblems, step } from "./lib.mjs";

const reference = env("QYVOL_IMAGE_REF");
const browser = await launch();
try {
  const { page } = await open(browser);
  await login(page);
  await page.goto(at(page, "/images"));
  assert.equal(await page.textContent("#images p.empty"), "El almacén local está vacío.");

  step("a reference that does not parse says what is wrong");
  await page.fill("#pull-ref", "Not A Reference!");
  await page.click("form.inline button[type=submit]");
  await page.waitForSelector("#pulls p.error");

  step("pull: progress to the end, then the image is in the table");
  await page.fill("#pull-ref", reference);
  await page.click("form.inline button[type=submit]");
  const done = page.locator(".pull[data-done=true]");
  await done.waitFor();
  assert.match(await done.textContent(), /^Descargada /);
  const [value, max] = await Promise.all([
    done.locator("progress").getAttribute("value"),
    done.locator("progress").getAttribute("max"),
  ]);
  assert.equal(value, max);
  assert.ok(Number(max) > 1000, `a whole image was counted (${max} bytes)`);
  const row = page.locator(`tr[data-image="${reference}"]`);
  await row.waitFor();

  step("deploy it from the store");
  await row.locator("a.button").click();
  await page.waitForURL(/\/deploy\?image=/);
  assert.equal(await page.inputValue("#image"), reference);
  await page.fill("#name", "from-store");
  await page.click("form.deploy button[type=submit]");
  await page.waitForURL(/\/apps\/from-store$/);
  await until(async () => (await page.locator("#log .line .text").allTextContents()).includes("👋 ¡Hola desde Qyvol WASI!"), "the app's greeting");
  await page.waitForSelector("#status .badge[data-state=exited]");

  step("a second deploy of the same name is refused, in the form");
  await page.goto(at(page, `/deploy?image=${encodeURIComponent(reference)}`));
  await page.fill("#name", "from-store");
  await page.click("form.deploy button[type=submit]");
  await page.waitForSelector("#deploy-result p.error");
  assert.match(await page.textContent("#deploy-result"), /from-store/);

  step("remove the image after confirming");
  await page.goto(at(page, "/images"));
  page.once("dialog", (d) => d.accept());
  await row.locator("button.danger").click();
  await until(async () => (await row.count()) === 0, "the row to go");
  assert.equal(await page.textContent("#images p.empty"), "El almacén local está vacío.");

  noProblems(page);
  console.log("images: ok");
} finally {
  await browser.close();
}
