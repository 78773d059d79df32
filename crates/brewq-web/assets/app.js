// The customer's pages: the order form (live waiting time, validation, confirmation with a QR
// code of the order's page) and an order's own page (its life, live, by Server-Sent Events,
// with a title, a sound, a vibration and a notification when the coffee is ready).
"use strict";

const $ = (id) => document.getElementById(id);

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
  if (!order.name) return ["name", t("error.name_missing")];
  if (order.name.length > 40) return ["name", t("error.name_long")];
  if (!/^[0-3]$/.test(order.sugar_count)) return ["sugar_count", t("error.field.sugar_count")];
  return null;
}

// A refusal of the shop, in the page's language: by its field, else by its code.
function refusal(status, reply) {
  if (reply.field && CATALOGUE[`error.field.${reply.field}`]) return t(`error.field.${reply.field}`);
  if (reply.code && CATALOGUE[`error.code.${reply.code}`]) return t(`error.code.${reply.code}`);
  return t("error.status", { status });
}

function startOrderPage() {
  const queue = new EventSource("/api/queue/events");
  queue.addEventListener("queue", (event) => {
    const q = JSON.parse(event.data);
    $("wait").textContent = q.machines_online
      ? t("wait.line", { wait: waitText(q.eta_seconds) + rangeText(q.eta_range_seconds), pending: formatNumber(q.pending), machines: formatNumber(q.machines_online) })
      : t("wait.no_machine", { pending: formatNumber(q.pending) });
  });
  queue.onerror = () => { $("wait").textContent = t("wait.reconnecting"); };

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
        confirmOrder(order, reply);
      } else {
        showError(reply.field && response.status === 400 ? reply.field : "form", refusal(response.status, reply));
      }
    } catch (error) {
      showError("form", t("error.unreachable"));
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

function confirmOrder(order, reply) {
  $("order-form").hidden = true;
  $("confirmation").hidden = false;
  $("confirmation-title").textContent = t("confirm.title", { name: order.name });
  $("confirmation-detail").textContent =
    t("confirm.detail", { position: formatNumber(reply.position), wait: waitText(reply.eta_seconds) + rangeText(reply.eta_range_seconds) });
  const page = `/orders/${encodeURIComponent(reply.order_id)}`;
  const link = $("confirmation-link");
  link.href = page;
  $("qr").src = `/api/orders/${encodeURIComponent(reply.order_id)}/qr`;
  $("qr-figure").hidden = false;
  link.focus();
}

// ---- An order's own page ----

// A reason the back end gave, in the page's language when it is one of the usual ones.
function reasonText(reason) {
  if (reason === "cancelled by the customer") return t("reason.cancelled");
  const gaveUp = /gave up after (\d+) attempts$/.exec(reason);
  return gaveUp ? t("reason.gave_up", { n: gaveUp[1] }) : reason;
}

function render(order) {
  // A long-ended order's name is removed (personal data): then the page greets no one.
  const named = !order.name_removed_at;
  const vars = {
    name: order.name,
    size: t(`size.${order.size}`).toLowerCase(),
    bean: t(`bean.${order.bean_type}`).toLowerCase(),
    machine: order.machine,
    status: t(`state.${order.status}`),
  };
  document.body.dataset.status = order.status;
  $("cup").className = `cup ${order.status}`;
  const at = order.machine && ["brewing", "ready"].includes(order.status) ? ".machine" : "";
  $("headline").textContent = t(`headline.${order.status}${at}${named ? ".named" : ""}`, vars);
  $("ticket").hidden = !order.ticket;
  if (order.ticket) $("ticket").textContent = t("status.ticket", { ticket: order.ticket });
  let detail = "";
  if (order.status === "queued") {
    detail = t("detail.queued", { position: formatNumber(order.position), wait: waitText(order.eta_seconds) + rangeText(order.eta_range_seconds) });
  }
  if (order.status === "brewing") detail = t("detail.brewing", { wait: waitText(order.eta_seconds) });
  if ((order.status === "failed" || order.status === "cancelled") && order.reason) detail = t("detail.reason", { reason: reasonText(order.reason) });
  $("detail").textContent = detail;
  const brewing = order.status === "brewing";
  $("progress").hidden = !brewing;
  $("progress-label").hidden = !brewing;
  if (brewing) $("progress").value = order.progress || 0;
  $("cancel").hidden = order.status !== "queued";
  // Once the order has ended, there is nothing left to be told about.
  $("notify").hidden = ["ready", "failed", "cancelled"].includes(order.status);
  $("history").replaceChildren(...order.history.map((entry) => {
    const item = document.createElement("li");
    const machine = entry.machine ? t("history.machine", { machine: entry.machine }) : "";
    const reason = entry.reason ? ` · ${reasonText(entry.reason)}` : "";
    item.textContent = t("history.entry", { time: formatTime(entry.at), status: t(`state.${entry.status}`), machine, reason });
    return item;
  }));
}

// ---- Telling the customer the coffee is ready, even when the tab is not watched ----

let audio = null;

// Browsers play sound only after a gesture: the "tell me" button (or any click) unlocks it.
function unlockSound() {
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!audio && Context) audio = new Context();
  if (audio && audio.state === "suspended") audio.resume();
}

// Two short tones, made on the spot: no sound file.
function chime() {
  // Without a click on this page, the browser may still allow it (the customer came from the
  // confirmation's link); if not, the context stays silent and nothing else changes.
  unlockSound();
  if (!audio) return;
  [880, 1320].forEach((frequency, index) => {
    const start = audio.currentTime + index * 0.25;
    const tone = audio.createOscillator();
    const gain = audio.createGain();
    tone.frequency.value = frequency;
    gain.gain.setValueAtTime(0.2, start);
    gain.gain.exponentialRampToValueAtTime(0.001, start + 0.2);
    tone.connect(gain).connect(audio.destination);
    tone.start(start);
    tone.stop(start + 0.22);
  });
}

function announceReady(order) {
  const text = t(order.machine ? "notify.ready.machine" : "notify.ready", { machine: order.machine, ticket: order.ticket || "" });
  document.title = `☕ ${text}`;
  chime();
  if (navigator.vibrate) navigator.vibrate([200, 100, 200]);
  if (window.Notification && Notification.permission === "granted") {
    new Notification(t("notify.title"), { body: text, tag: "brewq-ready" });
  }
}

function setUpNotify() {
  const button = $("notify");
  const update = () => {
    const allowed = window.Notification && Notification.permission === "granted";
    $("notify-note").textContent = allowed ? t("notify.on") : (window.Notification && Notification.permission === "denied" ? t("notify.denied") : "");
  };
  button.addEventListener("click", async () => {
    unlockSound();
    if (window.Notification && Notification.permission === "default") await Notification.requestPermission();
    update();
    $("notify-note").textContent ||= t("notify.sound_only");
  });
  document.addEventListener("click", unlockSound, { once: true });
  update();
}

function startStatusPage() {
  const id = decodeURIComponent(location.pathname.split("/").pop());
  let seen = null;
  const follow = () => {
    const source = new EventSource(`/api/orders/${encodeURIComponent(id)}/events`);
    source.addEventListener("order", (event) => {
      $("connection").textContent = "";
      const order = JSON.parse(event.data);
      render(order);
      // Announced when it becomes ready while the page is open, not when opened already ready.
      if (order.status === "ready" && seen && seen !== "ready") announceReady(order);
      seen = order.status;
      if (["ready", "failed", "cancelled"].includes(order.status)) source.close();
    });
    source.onerror = async () => {
      if (source.readyState === EventSource.CLOSED) {
        const response = await fetch(`/api/orders/${encodeURIComponent(id)}`).catch(() => null);
        if (response && response.status === 404) {
          $("headline").textContent = t("status.not_found");
          return;
        }
        setTimeout(follow, 2000);
      } else {
        $("connection").textContent = t("status.reconnecting");
      }
    };
  };
  follow();
  setUpNotify();
  $("cancel").onclick = async () => {
    $("order-error").textContent = "";
    const response = await fetch(`/api/orders/${encodeURIComponent(id)}`, { method: "DELETE" }).catch(() => null);
    if (!response || !response.ok) {
      const reply = response ? await response.json().catch(() => ({})) : {};
      $("order-error").textContent = response ? refusal(response.status, reply) : t("error.unreachable");
    }
  };
}

if (document.body.dataset.page === "order") startOrderPage();
if (document.body.dataset.page === "status") startStatusPage();
