// The operator's pages: login, and the live dashboard with its actions.
"use strict";

const $ = (id) => document.getElementById(id);

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Brewq-Csrf": "1" },
    body: JSON.stringify(body || {}),
  });
  const reply = await response.json().catch(() => ({}));
  if (response.status === 401) location.href = "/admin/login";
  if (!response.ok) throw new Error(reply.message || `the shop answered ${response.status}`);
  return reply;
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    $("action-error").textContent = "";
    $("action-note").textContent = "";
    try {
      const reply = await onClick();
      // A hold kept for a machine that is not running says so.
      if (reply && reply.kept) $("action-note").textContent = reply.message;
    } catch (error) { $("action-error").textContent = error.message; }
  });
  return b;
}

function since(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
  return ` for ${seconds} s`;
}

const HOLD_TEXT = { pause: "paused", out_of_service: "out of service" };
const STATE_TEXT = { idle: "idle", brewing: "brewing", paused: "paused", out_of_service: "out of service", stopping: "stopping" };

function render(d) {
  $("operator").textContent = `Logged in as ${d.operator}`;
  $("queue").textContent = `${d.waiting} waiting · ${d.in_flight} in flight · ${d.queue.machines_online} machine(s) taking orders · ETA for a new order ${d.queue.eta_seconds} s`;
  $("machines").replaceChildren(...d.machines.map((m) => {
    const row = document.createElement("tr");
    row.id = `machine-${m.id}`;
    cell(row, m.id);
    cell(row, m.online ? "online" : "offline");
    const held = m.hold ? ` (held: ${HOLD_TEXT[m.hold] || m.hold})` : "";
    cell(row, (STATE_TEXT[m.state] || m.state) + held).className = `state ${m.state}`;
    cell(row, m.order_id ? `${m.order_id}${since(m.brewing_since)}` : "");
    cell(row, m.cups);
    cell(row, m.failures);
    const actions = cell(row, "");
    actions.append(
      button(`Pause machine ${m.id}`, () => post(`/api/admin/machines/${m.id}/pause`)),
      button(`Resume machine ${m.id}`, () => post(`/api/admin/machines/${m.id}/resume`)),
      button(`Out of service ${m.id}`, () => post(`/api/admin/machines/${m.id}/out-of-service`)),
    );
    return row;
  }));
  const stock = d.stock ? Object.entries(d.stock.levels) : [];
  $("stock").replaceChildren(...stock.map(([item, level]) => {
    const row = document.createElement("tr");
    cell(row, item);
    const onHand = cell(row, level.on_hand);
    if (level.on_hand < level.low_at) {
      onHand.className = "alert";
      onHand.textContent = `${level.on_hand} — low, restock`;
    }
    cell(row, level.reserved);
    cell(row, level.low_at);
    const restock = cell(row, "");
    const input = document.createElement("input");
    input.type = "number"; input.min = "1"; input.value = "1000"; input.id = `restock-${item}`;
    const label = document.createElement("label");
    label.htmlFor = input.id; label.textContent = `Amount of ${item}`; label.className = "visually-hidden";
    restock.append(label, input, button(`Restock ${item}`, () => post("/api/admin/stock/restock", { items: { [item]: Number(input.value) } })));
    return row;
  }));
  $("failed").replaceChildren(...d.failed.map((f) => {
    const item = document.createElement("li");
    item.append(`${f.order_id}: ${f.reason} `,
      button(`Retry ${f.order_id}`, () => post(`/api/admin/failed/${f.order_id}/retry`)),
      button(`Give up ${f.order_id}`, () => post(`/api/admin/failed/${f.order_id}/give-up`)));
    return item;
  }));
  if (!d.failed.length) $("failed").textContent = "None.";
  $("audit").replaceChildren(...d.audit.map((a) => {
    const item = document.createElement("li");
    item.textContent = `${new Date(a.at).toLocaleTimeString()} ${a.who} ${a.action} ${a.target}: ${a.outcome}`;
    return item;
  }));
}

function startDashboard() {
  const source = new EventSource("/api/admin/events");
  source.addEventListener("dashboard", (event) => {
    $("connection").textContent = "";
    render(JSON.parse(event.data));
  });
  source.onerror = () => { $("connection").textContent = "· reconnecting…"; };
  $("logout").addEventListener("click", async () => {
    await post("/admin/logout").catch(() => {});
    location.href = "/admin/login";
  });
  $("logout-everywhere").addEventListener("click", async () => {
    await post("/admin/logout-everywhere").catch(() => {});
    location.href = "/admin/login";
  });
}

// Why a login did not go through, in words: a throttled attempt says how long to wait.
function loginRefusal(response) {
  if (!response) return "The operator pages cannot be reached; try again.";
  if (response.status === 401) return "Wrong user or password.";
  if (response.status === 429) {
    const wait = Number(response.headers.get("Retry-After")) || 1;
    return `Too many attempts: wait ${wait} s before trying again.`;
  }
  if (response.status === 400) return "That user name is too long.";
  return `The login failed (the server answered ${response.status}); try again.`;
}

function startLogin() {
  $("login-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    $("login-error").textContent = "";
    const response = await fetch("/admin/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user: $("user").value, password: $("password").value }),
    }).catch(() => null);
    if (response && response.ok) {
      // The chain's dashboard on a chain's hub, the shop's otherwise.
      location.href = "/";
      return;
    }
    $("login-error").textContent = loginRefusal(response);
    $("password").focus();
  });
}

if (document.body.dataset.page === "dashboard") startDashboard();
if (document.body.dataset.page === "login") startLogin();
