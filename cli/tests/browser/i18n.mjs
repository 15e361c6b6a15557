// Spanish by default, English by the browser's Accept-Language or by the toggle, which is
// remembered from page to page.
import { assert, url, launch, open, login, noProblems, step } from "./lib.mjs";

const browser = await launch();
try {
  step("an English browser gets English");
  const en = await open(browser, { locale: "en-US" });
  await en.page.goto(url("/login"));
  assert.equal(await en.page.textContent("h1"), "Log in");
  assert.equal(await en.page.getAttribute("html", "lang"), "en");
  await login(en.page);
  assert.equal(await en.page.textContent("h1"), "Overview");

  step("a Spanish browser gets Spanish, and the toggle switches to English for good");
  const { page } = await open(browser, { locale: "es-ES" });
  await login(page);
  assert.equal(await page.textContent("h1"), "Resumen");
  await page.click("text=English");
  await page.waitForSelector("h1:text-is('Overview')");
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await page.click("nav >> text=Apps");
  assert.equal(await page.textContent("h1"), "Apps");
  assert.equal(await page.textContent("nav a[aria-current=page]"), "Apps");
  await page.click("text=Español");
  await page.waitForSelector("h1:text-is('Aplicaciones')");

  noProblems(en.page);
  noProblems(page);
  console.log("i18n: ok");
} finally {
  await browser.close();
}
