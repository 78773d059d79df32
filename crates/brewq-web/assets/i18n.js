// The texts of the page's language, from the catalogue the page embeds, and dates, times and
// numbers in the visitor's locale. Loaded before each page's own script.
"use strict";

const CATALOGUE = JSON.parse(document.getElementById("i18n").textContent);
const LANG = document.documentElement.lang || "en";
// The visitor's own locale when it speaks the page's language (fr-CA, en-GB), else the page's.
const LOCALE = (navigator.languages || []).find((tag) => tag.split("-")[0] === LANG) || LANG;

// The text of `key` with each `{name}` replaced by `vars.name`.
function t(key, vars) {
  const text = CATALOGUE[key];
  if (text === undefined) return key;
  return text.replace(/\{(\w+)\}/g, (whole, name) => (vars && name in vars ? String(vars[name]) : whole));
}

function formatTime(iso) {
  return new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit", second: "2-digit" }).format(new Date(iso));
}

function formatNumber(value, digits) {
  return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits || 0 }).format(value);
}

// A waiting time as a person says it: seconds under a minute, else minutes.
function waitText(seconds) {
  if (seconds < 60) return t("wait.seconds", { n: formatNumber(Math.max(1, Math.round(seconds))) });
  return t("wait.minutes", { n: formatNumber(Math.round(seconds / 60)) });
}

// The language switch says which language the page is in.
for (const link of document.querySelectorAll(".lang a")) {
  if (link.hreflang === LANG) link.setAttribute("aria-current", "true");
}
