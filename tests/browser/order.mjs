// A customer in a real headless Chromium, in English then in French: the form refuses a
// missing name beside the field, an order goes through to the confirmation and its QR code,
// and its page follows it live to "ready", then says so by its title, a sound, a vibration
// and a notification; a queued order is cancelled from its page; every page passes axe-core
// and fits a phone.
// Usage: node order.mjs BASE_URL SCREENSHOT_DIR
import { audit, check, newPage, run, screenshots } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);

const TEXT = {
  "en-US": { shop: "coffee corner", missing: "Please tell us your name.", thanks: "Thanks Quentin", ready: /^Quentin, your coffee is ready at machine \d!$/,
    title: /^☕ Ready at machine \d! Ticket \d+$/, notification: "Your coffee is ready", cancelled: "Reason: cancelled by the customer.", time: /\d{2}:\d{2}:\d{2}\s(AM|PM): ready/ },
  "fr-FR": { shop: "le coin café", missing: "Merci d'indiquer votre prénom.", thanks: "Merci Quentin", ready: /^Quentin, votre café est prêt à la machine \d !$/,
    title: /^☕ Prêt à la machine \d ! Ticket \d+$/, notification: "Votre café est prêt", cancelled: "Raison : annulée par le client.", time: /\d{2}:\d{2}:\d{2} : prêt/ },
};

// Records what the page does to tell the customer, and lets the browser do it too.
function recordSignals() {
  window.signals = { tones: 0, vibrations: 0, notifications: [] };
  const start = OscillatorNode.prototype.start;
  OscillatorNode.prototype.start = function (...args) { window.signals.tones += 1; return start.apply(this, args); };
  const vibrate = navigator.vibrate ? navigator.vibrate.bind(navigator) : () => true;
  navigator.vibrate = (pattern) => { window.signals.vibrations += 1; return vibrate(pattern); };
  const Real = window.Notification;
  const Recorded = function (title, options) { window.signals.notifications.push(title); return new Real(title, options); };
  Object.defineProperty(Recorded, "permission", { get: () => Real.permission });
  Recorded.requestPermission = (...args) => Real.requestPermission(...args);
  window.Notification = Recorded;
}

async function customer(browser, locale) {
  const text = TEXT[locale];
  const tag = locale.slice(0, 2);
  const page = await newPage(browser, locale, { permissions: ["notifications"] });
  await page.addInitScript(recordSignals);
  await page.goto(base);
  check((await page.getAttribute("html", "lang")) === tag, `the page is not in ${tag}`);
  check((await page.textContent("h1")).includes(text.shop), `the heading is not in ${tag}`);
  await page.waitForFunction(() => /\d/.test(document.getElementById("wait").textContent), null, { timeout: 20000 });

  // A missing name: the error shows beside the field, in the page's language, and nothing is sent.
  await page.click("#submit");
  check((await page.textContent("#name-error")) === text.missing, `no error beside the name field in ${tag}`);
  check(await page.getAttribute("#name", "aria-invalid") === "true", "the name field is not marked invalid");
  await audit(page, `order form with an error (${tag})`);
  await screenshots(page, shots, `1-missing-name-${tag}`);

  // A real order, with the keyboard where a customer would use it.
  await page.fill("#name", "Quentin");
  await page.check('input[name="size"][value="large"]');
  await page.selectOption("#bean_type", "robusta");
  await page.check('input[name="milk"][value="cow"]');
  await page.fill("#sugar_count", "2");
  await page.focus("#submit");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#confirmation:not([hidden])", { timeout: 20000 });
  check((await page.textContent("#confirmation-title")).startsWith(text.thanks), `the confirmation does not thank Quentin in ${tag}`);
  // The QR code of the order's page, made by the shop itself.
  await page.waitForFunction(() => document.getElementById("qr").complete && document.getElementById("qr").naturalWidth > 0,
    null, { timeout: 10000 });
  const link = await page.getAttribute("#confirmation-link", "href");
  check((await page.getAttribute("#qr", "src")) === `/api/orders/${link.split("/").pop()}/qr`, "the QR code is not the order's");
  await audit(page, `confirmation (${tag})`);
  await screenshots(page, shots, `2-confirmation-${tag}`);

  // The order's own page, live to the cup, the customer having asked to be told.
  await page.click("#confirmation-link");
  await page.waitForURL(/\/orders\//);
  await page.click("#notify");
  await page.waitForFunction(() => document.getElementById("notify-note").textContent !== "");
  await page.waitForFunction((pattern) => new RegExp(pattern).test(document.getElementById("headline").textContent),
    text.ready.source, { timeout: 90000 });
  const title = await page.title();
  check(text.title.test(title), `the title does not say ready in ${tag}: "${title}"`);
  const signals = await page.evaluate(() => window.signals);
  check(signals.tones >= 1, "no sound played");
  check(signals.vibrations >= 1, "no vibration asked");
  check(signals.notifications.includes(text.notification), `no notification: ${JSON.stringify(signals.notifications)}`);
  const history = await page.textContent("#history");
  check(text.time.test(history), `the history's times are not in the ${locale} way: "${history}"`);
  await audit(page, `order page (${tag})`);
  await screenshots(page, shots, `3-order-ready-${tag}`);
  await page.context().close();
}

// A queued order cancelled from its page: the reason in the page's language.
async function cancel(browser, locale) {
  const page = await newPage(browser, locale);
  const place = async () => (await page.request.post(`${base}/api/orders`, {
    data: { name: "Busy", size: "large", bean_type: "mixed", milk: "none", sugar_count: 0 },
  })).json();
  await place(); // Keeps the one machine brewing while the next waits.
  const waiting = await place();
  await page.goto(`${base}/orders/${waiting.order_id}`);
  await page.waitForSelector("#cancel:not([hidden])", { timeout: 20000 });
  await page.click("#cancel");
  await page.waitForFunction((reason) => document.getElementById("detail").textContent === reason, TEXT[locale].cancelled,
    { timeout: 20000 });
  page.problems();
  await page.context().close();
}

// The language switch, remembered: a visitor whose browser asks for English picks French.
async function switchLanguage(browser) {
  const page = await newPage(browser, "en-US");
  await page.goto(base);
  await page.click("text=Français");
  await page.waitForFunction(() => document.documentElement.lang === "fr");
  await page.goto(base);
  check((await page.getAttribute("html", "lang")) === "fr", "the chosen language is not remembered");
  check((await page.textContent("#submit")) === "Commander mon café", "the form is not in French");
  check((await page.getAttribute('.lang a[hreflang="fr"]', "aria-current")) === "true", "the switch does not say French is on");
  await page.context().close();
}

await run("order", async (browser) => {
  await customer(browser, "en-US");
  await customer(browser, "fr-FR");
  await cancel(browser, "en-US");
  await cancel(browser, "fr-FR");
  await switchLanguage(browser);
});
