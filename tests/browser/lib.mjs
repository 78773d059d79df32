// What every browser run shares: Chromium launched the same way, pages that fail on a script
// error or a refused resource, the axe-core audit and screenshots at phone and desktop sizes.
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);
const AXE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

export const PHONE = { width: 390, height: 844 };
export const DESKTOP = { width: 1280, height: 900 };

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

export function check(condition, message) {
  if (!condition) throw new Error(message);
}

// A page in a context of its own, at phone size, speaking `locale`; a page error or a
// content-security-policy refusal fails the run.
export async function newPage(browser, locale, options = {}) {
  const context = await browser.newContext({ viewport: PHONE, locale, ...options });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && /Content Security Policy|Refused/.test(message.text())) problems.push(message.text());
  });
  page.problems = () => check(problems.length === 0, problems.join("\n"));
  return page;
}

// Runs axe-core on the page as it is: no serious or critical violation. It is evaluated
// through the browser's debugging channel, so the page's own policy still holds for the page.
export async function audit(page, name) {
  await page.evaluate(AXE);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const bad = result.violations.filter((violation) => ["serious", "critical"].includes(violation.impact));
  const report = bad.map((v) => `${v.id} (${v.impact}): ${v.nodes.map((node) => node.target.join(" ")).join(", ")}`);
  check(bad.length === 0, `${name}: axe finds ${report.join("; ")}`);
  page.problems();
}

// Nothing sticks out sideways at phone width.
export async function fitsPhone(page, name) {
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  const culprits = await page.evaluate(() => [...document.querySelectorAll("body *")]
    .filter((element) => !element.closest(".scroll table") && element.getBoundingClientRect().right > window.innerWidth + 1)
    .slice(0, 5).map((element) => `${element.tagName.toLowerCase()}#${element.id}.${element.className}`));
  check(overflow <= 0, `${name}: ${overflow}px wider than the phone (${culprits.join(", ")})`);
}

// A phone and a desktop screenshot of the page as it is: `<shots>/<name>-phone.png`, `-desktop.png`.
export async function screenshots(page, shots, name) {
  const size = page.viewportSize();
  await page.setViewportSize(PHONE);
  await fitsPhone(page, name);
  await page.screenshot({ path: path.join(shots, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: path.join(shots, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(size);
}

// Runs `body(browser)` and closes the browser; a failure prints its story and fails the run.
export async function run(what, body) {
  const browser = await launch();
  try {
    await body(browser);
    console.log(`${what}: ok`);
  } catch (error) {
    console.error(`${what}: ${error.stack || error}`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}
