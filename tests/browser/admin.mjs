// The operator in a real headless Chromium, in English then in French: logs in, sees each
// machine's buttons by its state (pause or resume, never both), quantities with their units
// and the charts of the last hour, pauses machine 1 and resumes it; every page passes
// axe-core and fits a phone.
// Usage: node admin.mjs BASE_URL USER PASSWORD SCREENSHOT_DIR
import { audit, check, newPage, run, screenshots } from "./lib.mjs";

const [base, user, password, shots] = process.argv.slice(2);

const TEXT = {
  en: { wrong: "Wrong user or password.", pause: "Pause machine 1", resume: "Resume machine 1", paused: "paused", lumps: / lumps$/,
    grams: / g$/, idle: "idle" },
  fr: { wrong: "Utilisateur ou mot de passe incorrect.", pause: "Mettre en pause la machine 1", resume: "Relancer la machine 1",
    paused: "en pause", lumps: / morceaux$/, grams: / g$/, idle: "libre" },
};

async function buttons(page) {
  return page.$$eval("#machine-1 button", (all) => all.map((b) => b.textContent));
}

async function operator(browser, tag) {
  const text = TEXT[tag];
  const page = await newPage(browser, tag === "fr" ? "fr-FR" : "en-US");
  await page.goto(`${base}/admin`);
  await page.waitForURL(/\/admin\/login$/);
  await page.fill("#user", user);
  await page.fill("#password", "not the password");
  await page.click("#login");
  await page.waitForFunction((wrong) => document.getElementById("login-error").textContent === wrong, text.wrong);
  await audit(page, `login (${tag})`);
  await screenshots(page, shots, `4-login-${tag}`);
  await page.fill("#password", password);
  await page.click("#login");
  await page.waitForURL(/\/admin$/);
  await page.waitForFunction((idle) => document.querySelector("#machine-1 .state")?.textContent === idle, text.idle, { timeout: 20000 });
  let shown = await buttons(page);
  check(shown.includes(text.pause) && !shown.includes(text.resume), `an idle machine offers ${shown}`);

  // Quantities with their units, and the charts drawn.
  const amounts = await page.$$eval("#stock tr", (rows) => rows.map((row) => row.children[1].textContent));
  check(amounts.some((amount) => text.grams.test(amount)) && amounts.some((amount) => text.lumps.test(amount)), `no units: ${amounts}`);
  await page.waitForFunction(() => document.querySelectorAll("#chart-orders rect").length > 1 && document.querySelector("#chart-share svg text"),
    null, { timeout: 20000 });
  for (const chart of ["orders", "waits", "stock", "share"]) {
    check(await page.$(`#chart-${chart} svg[role="img"] title`), `no ${chart} chart`);
  }
  check(await page.$("#chart-waits circle"), "no waiting time drawn");
  const levels = await page.$$eval("#chart-stock svg", (charts) => charts.map((chart) => chart.querySelectorAll("circle").length));
  check(levels.length === 6 && levels.every((points) => points > 0), `not every ingredient's level drawn: ${levels}`);

  await page.click(`text=${text.pause}`);
  await page.waitForFunction((paused) => document.querySelector("#machine-1 .state")?.textContent === paused, text.paused, { timeout: 20000 });
  shown = await buttons(page);
  check(shown.includes(text.resume) && !shown.includes(text.pause), `a paused machine offers ${shown}`);
  await audit(page, `dashboard (${tag})`);
  await screenshots(page, shots, `4-dashboard-paused-${tag}`);
  await page.click(`text=${text.resume}`);
  await page.waitForFunction((idle) => document.querySelector("#machine-1 .state")?.textContent === idle, text.idle, { timeout: 20000 });
  page.problems();
  await page.context().close();
}

await run("admin", async (browser) => {
  await operator(browser, "en");
  await operator(browser, "fr");
});
