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

// The range the wait most likely falls in, beside the ETA (" (likely 3 to 5 min)"), or ""
// when the system is sure enough to give one figure.
function rangeText(range) {
  if (!Array.isArray(range) || range[1] - range[0] < 5) return "";
  if (range[1] < 60) return ` (${t("wait.range_seconds", { low: formatNumber(range[0]), high: formatNumber(range[1]) })})`;
  const low = Math.floor(range[0] / 60), high = Math.max(low + 1, Math.ceil(range[1] / 60));
  return ` (${t("wait.range_minutes", { low: formatNumber(low), high: formatNumber(high) })})`;
}

// The language switch says which language the page is in.
for (const link of document.querySelectorAll(".lang a")) {
  if (link.hreflang === LANG) link.setAttribute("aria-current", "true");
}
