// What the operator's pages share (the shop's and the chain's): an action sent to the API, and
// the button that sends it.
"use strict";

// POSTs `body` as JSON with the pages' own header (a cross-site form cannot send it); to the
// login on 401; otherwise an error in words, from the first of `catalogues` (`admin`, `chain`)
// that has one for the status. With `idempotencyKey`, sent as `Idempotency-Key`.
async function post(url, body, catalogues = ["admin"], idempotencyKey) {
  const headers = { "Content-Type": "application/json", "X-Brewq-Csrf": "1" };
  if (idempotencyKey) headers["Idempotency-Key"] = idempotencyKey;
  const response = await fetch(url, { method: "POST", headers, body: JSON.stringify(body || {}) });
  const reply = await response.json().catch(() => ({}));
  if (response.status === 401) location.href = "/admin/login";
  if (!response.ok) {
    const key = catalogues.map((name) => `${name}.error.${response.status}`).find((k) => CATALOGUE[k] !== undefined);
    throw new Error(key ? t(key) : t("error.status", { status: response.status }));
  }
  return reply;
}

// A key from the OS's random source (crypto.randomUUID needs a page served over HTTPS).
function newKey() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// Actions sent and not confirmed yet, each with its key.
const UNCONFIRMED = new Map();

// `post` of an action the server keeps once per key: the same action sent again after an
// error or an answer that never came (the same URL and body) goes under the same key, so that
// it is kept once; once confirmed, the next one is a new action.
async function postOnce(url, body, catalogues) {
  const action = `${url} ${JSON.stringify(body || {})}`;
  if (!UNCONFIRMED.has(action)) UNCONFIRMED.set(action, newKey());
  const reply = await post(url, body, catalogues, UNCONFIRMED.get(action));
  UNCONFIRMED.delete(action);
  return reply;
}

// A button that runs `onClick` (an action) and shows, in the page's `action-note`, the note
// `noteOf` makes of its result (none: nothing), or its error in `action-error`. It waits for
// the answer before it can be clicked again: a double click does not send the action twice.
function actionButton(label, onClick, noteOf) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", async () => {
    const [error, note] = [document.getElementById("action-error"), document.getElementById("action-note")];
    error.textContent = "";
    note.textContent = "";
    b.disabled = true;
    try {
      const text = noteOf(await onClick());
      if (text) note.textContent = text;
    } catch (failure) { error.textContent = failure.message; }
    b.disabled = false;
  });
  return b;
}
