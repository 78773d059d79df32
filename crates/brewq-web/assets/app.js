// The brewq pages: the order form (live waiting time, validation, confirmation) and an
// order's own page (its life, live, by Server-Sent Events).
"use strict";

const $ = (id) => document.getElementById(id);

function waitText(seconds) {
  if (seconds < 60) return `${Math.max(1, Math.round(seconds))} s`;
  return `about ${Math.round(seconds / 60)} min`;
}

function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// ---- The order form ----

const FIELDS = ["name", "size", "bean_type", "milk", "sugar_count"];

function clearErrors() {
  for (const field of FIELDS.concat(["form"])) $(`${field}-error`).textContent = "";
  for (const field of FIELDS) {
    const input = $(field);
    if (input) input.removeAttribute("aria-invalid");
  }
}

function showError(field, message) {
  const slot = $(`${field}-error`) || $("form-error");
  slot.textContent = message;
  const input = $(field) || document.querySelector(`[name="${field}"]`);
  if (input) {
    input.setAttribute("aria-invalid", "true");
    input.focus();
  }
}

function readForm(form) {
  const data = new FormData(form);
  return {
    name: (data.get("name") || "").trim(),
    size: data.get("size"),
    bean_type: data.get("bean_type"),
    milk: data.get("milk"),
    sugar_count: String(data.get("sugar_count") ?? "").trim(),
  };
}

// The same rules as the server; the server checks again and names the field too.
function validate(order) {
  if (!order.name) return ["name", "Please tell us your name."];
  if (order.name.length > 40) return ["name", "Your name must be at most 40 characters."];
  if (!/^[0-3]$/.test(order.sugar_count)) return ["sugar_count", "Sugar must be a whole number from 0 to 3."];
  return null;
}

function startOrderPage() {
  const queue = new EventSource("/api/queue/events");
  queue.addEventListener("queue", (event) => {
    const q = JSON.parse(event.data);
    $("wait").textContent = q.machines_online
      ? `Waiting time: ${waitText(q.eta_seconds)} · ${q.pending} in the queue · ${q.machines_online} machine(s) online`
      : `No machine online right now · ${q.pending} in the queue`;
  });
  queue.onerror = () => { $("wait").textContent = "Waiting time: reconnecting…"; };

  const form = $("order-form");
  let key = newKey();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearErrors();
    const order = readForm(form);
    const invalid = validate(order);
    if (invalid) return showError(...invalid);
    $("submit").disabled = true;
    try {
      const response = await fetch("/api/orders", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Idempotency-Key": key },
        body: JSON.stringify(order),
      });
      const reply = await response.json().catch(() => ({}));
      if (response.status === 201) {
        key = newKey();
        confirm(order, reply);
      } else if (response.status === 400 && reply.field) {
        showError(reply.field, reply.message);
      } else {
        showError("form", reply.message || `The shop answered ${response.status}; please retry.`);
      }
    } catch (error) {
      showError("form", "The coffee shop cannot be reached; please retry.");
    } finally {
      $("submit").disabled = false;
    }
  });
  $("another").addEventListener("click", () => {
    $("confirmation").hidden = true;
    form.hidden = false;
    $("name").focus();
  });
}

function confirm(order, reply) {
  $("order-form").hidden = true;
  $("confirmation").hidden = false;
  $("confirmation-title").textContent = `Thanks ${order.name}, your coffee is on its way!`;
  $("confirmation-detail").textContent =
    `You are number ${reply.position} in the queue; ready in ${waitText(reply.eta_seconds)}.`;
  const link = $("confirmation-link");
  link.href = `/orders/${encodeURIComponent(reply.order_id)}`;
  link.focus();
}

// ---- An order's own page ----

const STATUS_TEXT = {
  queued: "is in the queue",
  brewing: "is brewing",
  ready: "is ready",
  failed: "could not be made",
  cancelled: "was cancelled",
};

function render(order) {
  // A long-ended order's name is removed (personal data): then the page greets no one.
  const greeting = order.name_removed_at ? "" : `${order.name}, `;
  const machine = order.machine ? ` at machine ${order.machine}` : "";
  document.body.dataset.status = order.status;
  $("cup").className = `cup ${order.status}`;
  const headline = order.status === "ready"
    ? `${greeting}your coffee is ready${machine}!`
    : `${greeting}your ${order.size} ${order.bean_type} ${STATUS_TEXT[order.status]}${order.status === "brewing" ? machine : ""}.`;
  $("headline").textContent = headline.charAt(0).toUpperCase() + headline.slice(1);
  let detail = "";
  if (order.status === "queued") detail = `Number ${order.position} in the queue · ready in ${waitText(order.eta_seconds)}.`;
  if (order.status === "brewing") detail = `About ${waitText(order.eta_seconds)} to go.`;
  if (order.status === "failed" || order.status === "cancelled") detail = order.reason ? `Reason: ${order.reason}.` : "";
  $("detail").textContent = detail;
  const brewing = order.status === "brewing";
  $("progress").hidden = !brewing;
  $("progress-label").hidden = !brewing;
  if (brewing) $("progress").value = order.progress || 0;
  $("cancel").hidden = order.status !== "queued";
  const history = $("history");
  history.replaceChildren(...order.history.map((entry) => {
    const item = document.createElement("li");
    const at = new Date(entry.at).toLocaleTimeString();
    item.textContent = `${at}: ${entry.status}${entry.machine ? ` (machine ${entry.machine})` : ""}${entry.reason ? ` · ${entry.reason}` : ""}`;
    return item;
  }));
}

function startStatusPage() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  const source = new EventSource(`/api/orders/${encodeURIComponent(id)}/events`);
  source.addEventListener("order", (event) => {
    $("connection").textContent = "";
    const order = JSON.parse(event.data);
    render(order);
    if (["ready", "failed", "cancelled"].includes(order.status)) source.close();
  });
  source.onerror = async () => {
    if (source.readyState === EventSource.CLOSED) {
      const response = await fetch(`/api/orders/${encodeURIComponent(id)}`).catch(() => null);
      if (response && response.status === 404) {
        $("headline").textContent = "We cannot find this order.";
        return;
      }
      setTimeout(startStatusPage, 2000);
    } else {
      $("connection").textContent = "Reconnecting…";
    }
  };
  $("cancel").onclick = async () => {
    $("order-error").textContent = "";
    const response = await fetch(`/api/orders/${encodeURIComponent(id)}`, { method: "DELETE" }).catch(() => null);
    if (!response || !response.ok) {
      const reply = response ? await response.json().catch(() => ({})) : {};
      $("order-error").textContent = reply.message || "Cannot cancel right now; please retry.";
    }
  };
}

if (document.body.dataset.page === "order") startOrderPage();
if (document.body.dataset.page === "status") startStatusPage();
