// The pickup board in a real headless Chromium, on a wall screen and a phone, in English and
// in French: an order shows as its ticket and first name while brewing, then ready, then
// leaves; a name that looks like markup shows as text; the board passes axe-core.
// Usage: node board.mjs BASE_URL SCREENSHOT_DIR
import { audit, check, newPage, run, screenshots } from "./lib.mjs";

const [base, shots] = process.argv.slice(2);
const NAME = "<b>Zoé</b>";

// The board's item for our customer in `column`, as the screen shows it.
function shown(column) {
  return [...document.querySelectorAll(`#${column} .ticket-item`)]
    .map((item) => ({ text: item.textContent, ticket: item.dataset.ticket, markup: item.querySelector("b") !== null }))
    .find((item) => item.text.includes("<b>Zoé</b>")) || null;
}

async function order(page) {
  const response = await page.request.post(`${base}/api/orders`, {
    data: { name: `${NAME} Martin`, size: "large", bean_type: "arabica", milk: "none", sugar_count: 0 },
  });
  check(response.status() === 201, `the order was refused: ${response.status()}`);
}

async function board(browser, locale, headings) {
  const tag = locale.slice(0, 2);
  const page = await newPage(browser, locale, { viewport: { width: 1920, height: 1080 } });
  await page.goto(`${base}/board`);
  check((await page.textContent("#brewing-title")) === headings[0], `the brewing column is not in ${tag}`);
  check((await page.textContent("#ready-title")) === headings[1], `the ready column is not in ${tag}`);
  await order(page);
  await page.waitForFunction(shown, "brewing", { timeout: 30000 });
  const brewing = await page.evaluate(shown, "brewing");
  check(!brewing.markup, "a name was rendered as markup");
  await page.waitForFunction(shown, "ready", { timeout: 60000 });
  const ready = await page.evaluate(shown, "ready");
  check(ready.ticket === brewing.ticket && !ready.markup, "the ready order is not the one brewing");
  check(!(await page.content()).includes("Martin"), "the board shows more than the first name");
  // Readable from 3 m: tickets at least 48 px tall on the wall screen.
  const size = await page.evaluate(() => parseFloat(getComputedStyle(document.querySelector("#ready .ticket-item")).fontSize));
  check(size >= 48, `tickets are ${size}px on the wall screen`);
  await audit(page, `board (${tag})`);
  await page.screenshot({ path: `${shots}/5-board-wall-${tag}.png` });
  await screenshots(page, shots, `5-board-${tag}`);
  // A few seconds after it is ready (as the controllers are set), the order leaves.
  await page.waitForFunction((ticket) => !document.querySelector(`#ready [data-ticket="${ticket}"]`), ready.ticket, { timeout: 60000 });
  check(await page.isVisible("#ready-empty"), "the empty ready column says nothing");
  page.problems();
  await page.context().close();
}

await run("board", async (browser) => {
  await board(browser, "en-GB", ["Brewing", "Ready for pickup"]);
  await board(browser, "fr-FR", ["En préparation", "Prêt, à retirer"]);
});
