// The chain's operator in a real headless Chromium, in English then in French: logs in on the
// hub, sees every shop, keeps one with the filter, pauses a machine of that shop (which then
// offers resume, not pause), resumes it, restocks the shop (once, though the first answer is lost
// and the operator clicks again); quantities carry their units; the
// page passes axe-core and fits a phone.
// Usage: node chain.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR
import { audit, check, newPage, run, screenshots } from "./lib.mjs";

const [base, user, password, shots] = process.argv.slice(2);

const TEXT = {
  en: { pause: "Pause machine 1 of shop 2", resume: "Resume machine 1 of shop 2", paused: "paused", restock: "Restock sugar in shop 2",
    kept: "applies it once", lumps: / lumps$/ },
  fr: { pause: "Mettre en pause la machine 1 de la boutique 2", resume: "Relancer la machine 1 de la boutique 2", paused: "en pause",
    restock: "Réapprovisionner sucre dans la boutique 2", kept: "l'applique une fois", lumps: / morceaux$/ },
};

async function chain(browser, tag) {
  const text = TEXT[tag];
  const page = await newPage(browser, tag === "fr" ? "fr-FR" : "en-US", { viewport: { width: 1100, height: 900 } });
  await page.goto(`${base}/`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill("#user", user);
  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForURL(/\/chain$/);
  // Every shop, each with its machine.
  await page.waitForSelector("#shop-1-machine-1", { timeout: 20000 });
  await page.waitForSelector("#shop-2-machine-1", { timeout: 20000 });
  await audit(page, `chain (${tag})`);
  // The filter keeps shop 2 only.
  await page.selectOption("#filter", "2");
  await page.waitForFunction(() => !document.getElementById("shop-1") && document.getElementById("shop-2"));
  await page.click(`text=${text.pause}`);
  await page.waitForFunction((paused) => document.querySelector("#shop-2-machine-1 .state")?.textContent === paused,
    text.paused, { timeout: 20000 });
  await page.waitForSelector(`text=${text.resume}`);
  check(!(await page.$(`text=${text.pause}`)), "a paused machine still offers pause");
  await page.fill("#restock-2-sugar", "25");
  // The first answer is lost on its way back (the hub kept the restock): the page says it
  // failed, and the operator clicks again. Sent under the same Idempotency-Key, the hub keeps
  // it once: the second answer names the same command.
  const restockUrl = "**/api/chain/shops/2/stock/restock";
  let kept;
  const lost = new Promise((resolve) => { kept = resolve; });
  await page.route(restockUrl, async (route) => {
    const response = await route.fetch();
    kept({ key: route.request().headers()["idempotency-key"], reply: await response.json() });
    await route.abort("connectionreset");
  }, { times: 1 });
  await page.click(`text=${text.restock}`);
  const first = await lost;
  check(first.key && Number.isInteger(first.reply.command), `the first restock: key ${first.key}, reply ${JSON.stringify(first.reply)}`);
  await page.waitForFunction(() => document.getElementById("action-error").textContent !== "", null, { timeout: 20000 });
  const again = page.waitForResponse((response) => response.url().endsWith("/api/chain/shops/2/stock/restock"));
  await page.click(`text=${text.restock}`);
  const second = await again;
  check(second.request().headers()["idempotency-key"] === first.key, "the restock clicked again went under another key");
  const reply = await second.json();
  check(reply.command === first.reply.command, `the restock was kept twice: commands ${first.reply.command} and ${reply.command}`);
  await page.waitForFunction((kept) => document.getElementById("action-note").textContent.includes(kept), text.kept, { timeout: 20000 });
  const sugar = await page.textContent("#shop-2-stock-sugar .on-hand");
  check(text.lumps.test(sugar.trim()), `sugar shown as "${sugar}", without its unit`);
  await screenshots(page, shots, `5-chain-shop-2-${tag}`);
  // Resumed, for the next language's run to find it taking orders.
  await page.click(`text=${text.resume}`);
  await page.waitForSelector(`text=${text.pause}`, { timeout: 20000 });
  await page.context().close();
}

await run("chain", async (browser) => {
  await chain(browser, "en");
  await chain(browser, "fr");
});
