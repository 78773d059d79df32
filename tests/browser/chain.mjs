// The chain's operator in a real headless Chromium: logs in on the hub, sees every shop, keeps
// one with the filter, pauses a machine of that shop and restocks it.
// Usage: node chain.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR
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
  await page.goto(`${base}/`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForURL(/\/chain$/);
  // Every shop, each with its machine.
  await page.waitForSelector("#shop-1-machine-1", { timeout: 20000 });
  await page.waitForSelector("#shop-2-machine-1", { timeout: 20000 });
  // The filter keeps shop 2 only.
  await page.selectOption("#filter", "2");
  await page.waitForFunction(() => !document.getElementById("shop-1") && document.getElementById("shop-2"));
  await page.click("text=Pause machine 1 of shop 2");
  await page.waitForFunction(() => document.querySelector("#shop-2-machine-1 .state")?.textContent === "paused",
    null, { timeout: 20000 });
  // Paused, the machine offers resume, not pause.
  await page.waitForSelector("text=Resume machine 1 of shop 2");
  if (await page.$("text=Pause machine 1 of shop 2")) throw new Error("a paused machine still offers pause");
  await page.fill("#restock-2-sugar", "25");
  await page.click("text=Restock sugar in shop 2");
  await page.waitForFunction(() => document.getElementById("action-note").textContent.includes("applies it once"),
    null, { timeout: 20000 });
  // Units are shown with the quantities.
  const sugar = await page.textContent("#shop-2-stock-sugar .on-hand");
  if (!/lumps$/.test(sugar.trim())) throw new Error(`sugar shown as "${sugar}", without its unit`);
  await page.screenshot({ path: path.join(shots, "5-chain-shop-2.png"), fullPage: true });
  console.log("chain: ok (shop 2 filtered, machine 1 paused, sugar restocked)");
} catch (error) {
  console.error(`chain: ${error.stack || error}`);
  process.exitCode = 1;
} finally {
  await browser.close();
}
