// A busy shop's pickup board in a real headless Chromium, in English and in French: the ready
// column lists a hundred tickets and says how many more there are, as a number of the
// customer's language; the brewing column, with none left over, says nothing more; the page
// passes axe-core and fits a phone.
// Usage: node board-busy.mjs BASE_URL MORE_READY SCREENSHOT_DIR
import { audit, check, newPage, run, screenshots } from "./lib.mjs";

const [base, more, shots] = process.argv.slice(2);
const LISTED = 100;

async function board(browser, locale, expected) {
  const tag = locale.slice(0, 2);
  const page = await newPage(browser, locale, { viewport: { width: 1920, height: 1080 } });
  await page.goto(`${base}/board`);
  await page.waitForFunction(() => !document.querySelector("#ready-more").hidden, null, { timeout: 30000 });
  const said = (await page.textContent("#ready-more")).trim();
  check(said === expected, `the ready column says "${said}", not "${expected}" (${tag})`);
  const listed = await page.locator("#ready .ticket-item").count();
  check(listed === LISTED, `the ready column lists ${listed} tickets, not ${LISTED} (${tag})`);
  check(await page.isHidden("#brewing-more"), `the brewing column counts orders it lists (${tag})`);
  await audit(page, `busy board (${tag})`);
  await screenshots(page, shots, `6-board-busy-${tag}`);
  page.problems();
  await page.context().close();
}

await run("busy board", async (browser) => {
  await board(browser, "en-GB", `and ${more} more`);
  await board(browser, "fr-FR", `et ${more} de plus`);
});
