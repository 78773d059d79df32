// The chain's dashboard: every shop as the hub last heard from it, and actions on one shop.
"use strict";

const $ = (id) => document.getElementById(id);
const UNITS = { arabica: "g", robusta: "g", mixed: "g", cow_milk: "ml", soy_milk: "ml", sugar: "lumps" };
const STATE_TEXT = { idle: "idle", brewing: "brewing", paused: "paused", out_of_service: "out of service", stopping: "stopping" };
// A shop whose machines have said nothing for this long is shown as cut off.
const QUIET_SECONDS = 10;

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Brewq-Csrf": "1" },
    body: JSON.stringify(body || {}),
  });
  const reply = await response.json().catch(() => ({}));
  if (response.status === 401) location.href = "/admin/login";
  if (!response.ok) throw new Error(reply.message || `the hub answered ${response.status}`);
  return reply;
}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function button(label, onClick) {
  const b = el("button", label);
  b.type = "button";
  b.addEventListener("click", async () => {
    $("action-error").textContent = "";
    $("action-note").textContent = "";
    try {
      const reply = await onClick();
      if (reply && reply.message) $("action-note").textContent = reply.message;
    } catch (error) { $("action-error").textContent = error.message; }
  });
  return b;
}

function table(headings, rows) {
  const t = el("table");
  const head = el("tr");
  headings.forEach((h) => head.append(el("th", h)));
  t.append(el("thead"), el("tbody"));
  t.tHead.append(head);
  t.tBodies[0].append(...rows);
  return t;
}

function machineRow(shop, m) {
  const row = el("tr");
  row.id = `shop-${shop.id}-machine-${m.id}`;
  row.append(el("td", m.id), el("td", m.online ? "online" : "offline"), el("td", STATE_TEXT[m.state] || m.state, `state ${m.state}`),
    el("td", m.cups), el("td", m.failures));
  const actions = el("td");
  const url = (action) => `/api/chain/shops/${shop.id}/machines/${m.id}/${action}`;
  if (m.state === "paused" || m.state === "out_of_service") {
    actions.append(button(`Resume machine ${m.id} of shop ${shop.id}`, () => post(url("resume"))));
  } else {
    actions.append(button(`Pause machine ${m.id} of shop ${shop.id}`, () => post(url("pause"))));
  }
  if (m.state !== "out_of_service") {
    actions.append(button(`Out of service ${m.id} of shop ${shop.id}`, () => post(url("out-of-service"))));
  }
  row.append(actions);
  return row;
}

function stockRow(shop, item, level) {
  const row = el("tr");
  row.id = `shop-${shop.id}-stock-${item}`;
  const unit = UNITS[item] || "";
  const onHand = el("td", `${level.on_hand} ${unit}`, level.on_hand < level.low_at ? "on-hand alert" : "on-hand");
  row.append(el("td", item), onHand, el("td", `${level.low_at} ${unit}`));
  const restock = el("td");
  const input = el("input");
  input.type = "number"; input.min = "1"; input.value = "1000"; input.id = `restock-${shop.id}-${item}`;
  const label = el("label", `Amount of ${item} (${unit}) for shop ${shop.id}`, "visually-hidden");
  label.htmlFor = input.id;
  restock.append(label, input,
    button(`Restock ${item} in shop ${shop.id}`, () => post(`/api/chain/shops/${shop.id}/stock/restock`, { items: { [item]: Number(input.value) } })));
  row.append(restock);
  return row;
}

function heard(shop) {
  if (!shop.last_heard) return "not heard from yet";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(shop.last_heard)) / 1000));
  const when = new Date(shop.last_heard).toLocaleTimeString();
  return seconds > QUIET_SECONDS ? `not heard from since ${when}: its link may be down` : `heard from ${seconds} s ago`;
}

function renderShop(shop) {
  const section = el("section");
  section.id = `shop-${shop.id}`;
  section.setAttribute("aria-labelledby", `shop-${shop.id}-title`);
  const title = el("h2", `Shop ${shop.id}`);
  title.id = `shop-${shop.id}-title`;
  const o = shop.orders;
  section.append(title, el("p", heard(shop), "muted"),
    el("p", `${o.queued} waiting · ${o.brewing} brewing · ${o.ready} ready · ${o.failed} failed · ${o.cancelled} cancelled`));
  section.append(el("h3", "Machines"), table(["#", "Link", "State", "Cups", "Failures", "Actions"], shop.machines.map((m) => machineRow(shop, m))));
  const levels = shop.stock ? Object.entries(shop.stock.levels) : [];
  section.append(el("h3", "Stock"), table(["Item", "On hand", "Low at", "Restock"], levels.map(([item, level]) => stockRow(shop, item, level))));
  section.append(el("h3", "Failed orders"));
  const failed = el("ul");
  failed.append(...shop.failed.map((f) => el("li", `${f.order_id}: ${f.reason}`)));
  if (!shop.failed.length) failed.textContent = "None.";
  section.append(failed);
  return section;
}

let latest = [];

function render() {
  const filter = $("filter");
  const known = new Set([...filter.options].map((option) => option.value));
  latest.forEach((shop) => {
    if (!known.has(String(shop.id))) filter.append(new Option(`Shop ${shop.id}`, String(shop.id)));
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
source.onerror = () => { $("connection").textContent = "· reconnecting…"; };
$("filter").addEventListener("change", render);
$("logout").addEventListener("click", async () => {
  await post("/admin/logout").catch(() => {});
  location.href = "/admin/login";
});
