// The operator in a real headless Chromium: logs in, pauses machine 1, sees it paused.
// Usage: node admin.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR
import { chromium } from "playwright-core";
import path from "node:path";

const [base, user, password, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_BIN || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});

try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(`${base}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill("#user", user);
  await page.fill("#password", "not the password");
  await page.click("#login");
  await page.waitForFunction(() => document.getElementById("login-error").textContent.includes("Wrong"));
  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForURL(/\/admin$/);
  await page.waitForSelector("#machine-1", { timeout: 20000 });
  await page.click("text=Pause machine 1");
  await page.waitForFunction(() => document.querySelector("#machine-1 .state")?.textContent === "paused",
    null, { timeout: 20000 });
  await page.screenshot({ path: path.join(shots, "4-dashboard-paused.png"), fullPage: true });
  console.log("admin: ok (machine 1 paused)");
} catch (error) {
  console.error(`admin: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
