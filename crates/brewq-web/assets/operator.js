// What the operator's pages share (the shop's and the chain's): an action sent to the API.
"use strict";

// POSTs `body` as JSON with the pages' own header (a cross-site form cannot send it); to the
// login on 401; otherwise an error in words, from the first of `catalogues` (`admin`, `chain`)
// that has one for the status.
async function post(url, body, catalogues = ["admin"]) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Brewq-Csrf": "1" },
    body: JSON.stringify(body || {}),
  });
  const reply = await response.json().catch(() => ({}));
  if (response.status === 401) location.href = "/admin/login";
  if (!response.ok) {
    const key = catalogues.map((name) => `${name}.error.${response.status}`).find((k) => CATALOGUE[k] !== undefined);
    throw new Error(key ? t(key) : t("error.status", { status: response.status }));
  }
  return reply;
}
