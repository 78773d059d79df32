// A customer in a real headless Chromium: the form refuses a missing name beside the field,
// an order goes through to the confirmation, and its page follows it live to "ready".
// Usage: node order.mjs BASE_URL SCREENSHOT_DIR
import { chromium } from "playwright-core";
import path from "node:path";

const [base, shots] = process.argv.slice(2);
const executablePath = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

function check(condition, message) {
  if (!condition) throw new Error(message);
}

try {
  const page = await browser.newPage({ viewport: { width: 420, height: 860 } });
  await page.goto(base);
  await page.waitForFunction(() => /Waiting time: \d|about \d/.test(document.getElementById("wait").textContent),
    null, { timeout: 20000 });

  // A missing name: the error shows beside the field, and nothing is sent.
  await page.click("#submit");
  const nameError = await page.textContent("#name-error");
  check(nameError.includes("name"), `no error beside the name field: "${nameError}"`);
  check(await page.getAttribute("#name", "aria-invalid") === "true", "the name field is not marked invalid");
  await page.screenshot({ path: path.join(shots, "1-missing-name.png"), fullPage: true });

  // A real order, with the keyboard where a customer would use it.
  await page.fill("#name", "Quentin");
  await page.check('input[name="size"][value="large"]');
  await page.selectOption("#bean_type", "robusta");
  await page.check('input[name="milk"][value="cow"]');
  await page.fill("#sugar_count", "2");
  await page.focus("#submit");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#confirmation:not([hidden])", { timeout: 20000 });
  const title = await page.textContent("#confirmation-title");
  check(title.includes("Quentin"), `confirmation does not name the customer: "${title}"`);
  await page.screenshot({ path: path.join(shots, "2-confirmation.png"), fullPage: true });

  // The order's own page, live to the cup.
  await page.click("#confirmation-link");
  await page.waitForURL(/\/orders\//);
  await page.waitForFunction(() => /ready at machine \d/.test(document.getElementById("headline").textContent),
    null, { timeout: 90000 });
  const headline = await page.textContent("#headline");
  check(headline.startsWith("Quentin, your coffee is ready at machine"), `unexpected headline "${headline}"`);
  await page.screenshot({ path: path.join(shots, "3-order-ready.png"), fullPage: true });
  console.log(`browser: ok (${headline})`);
} catch (error) {
  console.error(`browser: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
