// The chain's dashboard: every shop as the hub last heard from it, and actions on one shop.
"use strict";

const $ = (id) => document.getElementById(id);
const UNITS = { arabica: "g", robusta: "g", mixed: "g", cow_milk: "ml", soy_milk: "ml", sugar: "lumps" };
// A shop whose machines have said nothing for this long is shown as cut off.
const QUIET_SECONDS = 10;
// An action's error in words: the chain's own, else the operator's pages'.
const CHAIN_ERRORS = ["chain", "admin"];

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

// An action's button: the text its action returns, if any, is its note.
function button(label, onClick) {
  return actionButton(label, onClick, (note) => (typeof note === "string" ? note : ""));
}

function table(headings, rows) {
  const t = el("table");
  const head = el("tr");
  headings.forEach((h) => head.append(el("th", h)));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(head);
  t.tBodies[0].append(...rows);
  // Scrolled sideways on a phone, not the page.
  const scroll = el("div", undefined, "scroll");
  scroll.append(t);
  return scroll;
}

function machineRow(shop, m) {
  const row = el("tr");
  row.id = `shop-${shop.id}-machine-${m.id}`;
  row.append(el("td", m.id), el("td", t(m.online ? "admin.online" : "admin.offline")), el("td", t(`machine.${m.state}`), `state ${m.state}`),
    el("td", formatNumber(m.cups)), el("td", formatNumber(m.failures)));
  const actions = el("td");
  const act = (action) => button(t(`chain.action.${action}`, { id: m.id, shop: shop.id }),
    () => postOnce(`/api/chain/shops/${shop.id}/machines/${m.id}/${action}`, {}, CHAIN_ERRORS)
      .then((reply) => t("chain.machine_kept", { shop: shop.id, id: m.id, time: formatTime(reply.valid_until) })));
  actions.append(act(m.state === "paused" || m.state === "out_of_service" ? "resume" : "pause"));
  if (m.state !== "out_of_service") actions.append(act("out-of-service"));
  row.append(actions);
  return row;
}

function stockRow(shop, item, level) {
  const row = el("tr");
  row.id = `shop-${shop.id}-stock-${item}`;
  const unit = UNITS[item] || "g";
  const amount = (n) => t(`unit.${unit}`, { n: formatNumber(n) });
  const onHand = el("td", amount(level.on_hand), level.on_hand < level.low_at ? "on-hand alert" : "on-hand");
  const name = t(`ingredient.${item}`);
  row.append(el("td", name), onHand, el("td", amount(level.low_at)));
  const restock = el("td");
  const input = el("input");
  input.type = "number"; input.min = "1"; input.value = "1000"; input.id = `restock-${shop.id}-${item}`;
  const label = el("label", t("chain.restock_amount", { item: name, unit: t(`unit.${unit}.name`), shop: shop.id }), "visually-hidden");
  label.htmlFor = input.id;
  restock.append(label, input, button(t("chain.restock", { item: name, shop: shop.id }), () =>
    postOnce(`/api/chain/shops/${shop.id}/stock/restock`, { items: { [item]: Number(input.value) } }, CHAIN_ERRORS).then(() => t("chain.restock_kept", { shop: shop.id }))));
  row.append(restock);
  return row;
}

function heard(shop) {
  if (!shop.last_heard) return t("chain.not_heard");
  const seconds = Math.max(0, Math.round((Date.now() - new Date(shop.last_heard)) / 1000));
  return seconds > QUIET_SECONDS ? t("chain.quiet", { time: formatTime(shop.last_heard) }) : t("chain.heard", { seconds: formatNumber(seconds) });
}

function renderShop(shop) {
  const section = el("section");
  section.id = `shop-${shop.id}`;
  section.setAttribute("aria-labelledby", `shop-${shop.id}-title`);
  const title = el("h2", t("chain.shop", { id: shop.id }));
  title.id = `shop-${shop.id}-title`;
  const o = shop.orders;
  section.append(title, el("p", heard(shop), "muted"),
    el("p", t("chain.orders_line", Object.fromEntries(Object.entries(o).map(([k, v]) => [k, formatNumber(v)])))));
  const heads = (keys) => keys.map((key) => (key === "#" ? "#" : t(key)));
  section.append(el("h3", t("admin.machines")),
    table(heads(["#", "admin.col.link", "admin.col.state", "admin.col.cups", "admin.col.failures", "admin.col.actions"]), shop.machines.map((m) => machineRow(shop, m))));
  const levels = shop.stock ? Object.entries(shop.stock.levels) : [];
  section.append(el("h3", t("admin.stock")),
    table(heads(["admin.col.item", "admin.col.on_hand", "admin.col.low_at", "admin.col.restock"]), levels.map(([item, level]) => stockRow(shop, item, level))));
  section.append(el("h3", t("admin.failed")));
  const failed = el("ul");
  failed.append(...shop.failed.map((f) => el("li", `${f.reference}: ${f.reason}`)));
  if (!shop.failed.length) failed.append(el("li", t("admin.none")));
  section.append(failed);
  return section;
}

let latest = [];

function render() {
  const filter = $("filter");
  const known = new Set([...filter.options].map((option) => option.value));
  latest.forEach((shop) => {
    if (!known.has(String(shop.id))) filter.append(new Option(t("chain.shop", { id: shop.id }), String(shop.id)));
  });
  // Typing in a restock field is not interrupted by the next refresh.
  if (document.activeElement && document.activeElement.tagName === "INPUT") return;
  const shown = latest.filter((shop) => !filter.value || String(shop.id) === filter.value);
  $("shops").replaceChildren(...shown.map(renderShop));
}

const source = new EventSource("/api/chain/events");
source.addEventListener("chain", (event) => {
  $("connection").textContent = "";
  latest = JSON.parse(event.data);
  render();
});
source.onerror = () => { $("connection").textContent = t("admin.reconnecting"); };
$("filter").addEventListener("change", render);
$("logout").addEventListener("click", async () => {
  await post("/admin/logout").catch(() => {});
  location.href = "/admin/login";
});
