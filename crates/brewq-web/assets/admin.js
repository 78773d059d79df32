// The operator's pages: login, and the live dashboard with its actions and charts.
"use strict";

const $ = (id) => document.getElementById(id);

// A cell of `row`, labelled with its column's heading for the phone's card layout.
function cell(row, text) {
  const td = document.createElement("td");
  const heading = (row.dataset.headings || "").split("|")[row.children.length];
  if (heading) td.dataset.label = heading;
  td.textContent = text;
  row.appendChild(td);
  return td;
}

// A row for the table whose body is `body`, knowing its columns' headings.
function labelledRow(body) {
  const row = document.createElement("tr");
  const headings = [...$(body).closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  row.dataset.headings = headings.join("|");
  return row;
}

// An action's button: a hold kept for a machine that is not running says so.
function button(label, onClick) {
  return actionButton(label, onClick, (reply) => (reply && reply.kept ? t("admin.hold_kept") : ""));
}

function since(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso)) / 1000));
  return t("admin.since", { seconds: formatNumber(seconds) });
}

// The actions that make sense in a machine's state: pause or resume, never both.
function machineActions(m) {
  const held = m.hold || (["paused", "out_of_service"].includes(m.state) ? m.state : null);
  const action = (name) => button(t(`admin.action.${name}`, { id: m.id }), () => post(`/api/admin/machines/${m.id}/${name}`));
  if (held) return [action("resume")];
  if (m.state === "stopping") return [];
  return [action("pause"), action("out-of-service")];
}

function amount(value, unit) {
  return t(`unit.${unit}`, { n: formatNumber(value) });
}

function renderMachines(d) {
  const brewing = new Map(((d.board && d.board.brewing) || []).map((item) => [item.machine, item]));
  $("machines").replaceChildren(...d.machines.map((m) => {
    const row = labelledRow("machines");
    row.id = `machine-${m.id}`;
    cell(row, m.id);
    cell(row, t(m.online ? "admin.online" : "admin.offline"));
    const held = m.hold ? t("admin.held", { hold: t(`machine.${m.hold}`) }) : "";
    cell(row, t(`machine.${m.state}`) + held).className = `state ${m.state}`;
    const order = brewing.get(m.id);
    cell(row, m.state === "brewing" ? `${order ? t("admin.ticket", { ticket: order.ticket }) : ""}${since(m.brewing_since)}` : "");
    cell(row, formatNumber(m.cups));
    cell(row, formatNumber(m.failures));
    cell(row, "").append(...machineActions(m));
    return row;
  }));
}

function renderStock(d) {
  const stock = d.stock ? Object.entries(d.stock.levels) : [];
  $("stock").replaceChildren(...stock.map(([item, level]) => {
    const unit = d.units[item];
    const row = labelledRow("stock");
    cell(row, t(`ingredient.${item}`));
    const onHand = cell(row, amount(level.on_hand, unit));
    if (level.on_hand < level.low_at) {
      onHand.className = "alert";
      onHand.textContent = t("admin.low", { amount: amount(level.on_hand, unit) });
    }
    cell(row, amount(level.reserved, unit));
    cell(row, amount(level.low_at, unit));
    const restock = cell(row, "");
    const input = document.createElement("input");
    input.type = "number"; input.min = "1"; input.value = "1000"; input.id = `restock-${item}`;
    const label = document.createElement("label");
    label.htmlFor = input.id; label.textContent = t("admin.restock_amount", { item: t(`ingredient.${item}`), unit: t(`unit.${unit}.name`) });
    label.className = "visually-hidden";
    restock.append(label, input, button(t("admin.restock", { item: t(`ingredient.${item}`) }),
      () => postOnce("/api/admin/stock/restock", { items: { [item]: Number(input.value) } })));
    return row;
  }));
}

function render(d) {
  $("operator").textContent = t("admin.logged_in", { user: d.operator });
  $("queue").textContent = t("admin.queue_line", {
    waiting: formatNumber(d.waiting), in_flight: formatNumber(d.in_flight),
    machines: formatNumber(d.queue.machines_online), eta: waitText(d.queue.eta_seconds),
  });
  renderMachines(d);
  renderStock(d);
  renderCharts(d);
  $("failed").replaceChildren(...d.failed.map((f) => {
    const item = document.createElement("li");
    // Shown by its reference (as in the logs); its id only goes back in the action's address.
    const id = encodeURIComponent(f.order_id);
    item.append(`${f.reference} (${formatTime(f.at)}): ${f.reason} `,
      button(t("admin.retry", { id: f.reference }), () => post(`/api/admin/failed/${id}/retry`)),
      button(t("admin.give_up", { id: f.reference }), () => post(`/api/admin/failed/${id}/give-up`)));
    return item;
  }));
  if (!d.failed.length) {
    // A list holds list items only, even to say it is empty.
    const none = document.createElement("li");
    none.textContent = t("admin.none");
    $("failed").replaceChildren(none);
  }
  $("audit").replaceChildren(...d.audit.map((a) => {
    const item = document.createElement("li");
    item.textContent = `${formatTime(a.at)} ${a.who} ${a.action} ${a.target}: ${a.outcome}`;
    return item;
  }));
}

// ---- Charts, drawn here as SVG: no library, no external asset ----

const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#8a4b22", "#1f6f8b", "#5b8c3a", "#a23b72", "#6b5b4f", "#c47f00"];
const [WIDTH, HEIGHT, PAD] = [360, 160, 28];

function svgElement(name, attributes, text) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// A chart of `series` ({label, values: [number|null]}) at the times `times`, with its axes,
// a legend and a text summary for screen readers. Bars for counts, else lines with a dot on
// each point (one point alone still shows).
function chart(series, times, summary, bars) {
  const count = times.length;
  const top = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const x = (i) => PAD + 8 + (i * (WIDTH - PAD - 16)) / Math.max(1, count - 1);
  const y = (v) => HEIGHT - PAD + 4 - (v / top) * (HEIGHT - PAD - 8);
  const svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT + 18 * series.length}`, role: "img", "aria-label": summary });
  svg.append(svgElement("title", {}, summary));
  svg.append(svgElement("line", { x1: PAD, y1: y(0), x2: WIDTH - 4, y2: y(0), stroke: "#6b5b4f" }));
  const label = (attributes, text) => svg.append(svgElement("text", { "font-size": 13, fill: "#2b1d14", ...attributes }, text));
  label({ x: 0, y: y(top) + 4 }, formatNumber(top, 1));
  label({ x: 0, y: y(0) }, "0");
  if (count) {
    label({ x: PAD, y: HEIGHT }, formatClock(times[0]));
    label({ x: WIDTH - 4, y: HEIGHT, "text-anchor": "end" }, formatClock(times[count - 1]));
  }
  series.forEach((s, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const points = s.values.map((v, i) => [v, i]).filter(([v]) => v !== null);
    if (bars) {
      points.forEach(([v, i]) => svg.append(svgElement("rect", { x: x(i) - 2, y: y(v), width: 4, height: y(0) - y(v), fill: colour })));
    } else {
      svg.append(svgElement("polyline", { points: points.map(([v, i]) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: colour, "stroke-width": 2 }));
      points.forEach(([v, i]) => svg.append(svgElement("circle", { cx: x(i), cy: y(v), r: 3, fill: colour })));
    }
    const legend = HEIGHT + 16 + 18 * index;
    svg.append(svgElement("rect", { x: PAD, y: legend - 10, width: 11, height: 11, fill: colour }));
    label({ x: PAD + 16, y: legend }, s.label);
  });
  return svg;
}

function formatClock(iso) {
  return new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit" }).format(new Date(iso));
}

function renderCharts(d) {
  const minutes = (d.activity && d.activity.minutes) || [];
  const times = minutes.map((m) => m.at);
  const orders = minutes.map((m) => m.accepted);
  $("chart-orders").replaceChildren(chart([{ label: t("chart.orders_legend"), values: orders }], times,
    t("chart.orders_summary", { total: formatNumber(orders.reduce((a, b) => a + b, 0)) }), true));
  const p50 = minutes.map((m) => m.wait_p50_seconds ?? null);
  const p90 = minutes.map((m) => m.wait_p90_seconds ?? null);
  const lastWait = [...p90].reverse().find((v) => v !== null);
  $("chart-waits").replaceChildren(chart([{ label: t("chart.p50"), values: p50 }, { label: t("chart.p90"), values: p90 }], times,
    lastWait === undefined ? t("chart.no_waits") : t("chart.waits_summary", { p90: waitText(lastWait) })));
  // One small chart per ingredient, each on its own scale: grams, millilitres and lumps
  // do not share an axis.
  const samples = d.stock_history || [];
  const sampled = samples.map((sample) => sample.at);
  $("chart-stock").replaceChildren(...Object.keys(d.units).map((item) => {
    const name = `${t(`ingredient.${item}`)} (${t(`unit.${d.units[item]}.name`)})`;
    const values = samples.map((sample) => sample.levels[item] ?? null);
    const last = [...values].reverse().find((v) => v !== null);
    const summary = last === undefined ? t("chart.stock_none", { item: name }) : t("chart.stock_summary", { item: name, amount: amount(last, d.units[item]) });
    return chart([{ label: name, values }], sampled, summary);
  }));
  renderShare(d);
}

// Each machine's share of the brews of the last hour, as bars with their percentage.
function renderShare(d) {
  const brews = ((d.activity && d.activity.brews_by_machine) || []).map((m) => [m.machine, m.brews]);
  const total = brews.reduce((sum, [, n]) => sum + n, 0);
  const svg = svgElement("svg", { viewBox: `0 0 ${WIDTH} ${Math.max(1, brews.length) * 22 + 4}`, role: "img",
    "aria-label": t("chart.share_summary", { total: formatNumber(total) }) });
  svg.append(svgElement("title", {}, t("chart.share_summary", { total: formatNumber(total) })));
  brews.forEach(([machine, n], i) => {
    const share = total ? n / total : 0;
    svg.append(svgElement("text", { x: 0, y: i * 22 + 15, "font-size": 13, fill: "#2b1d14" }, t("chart.machine", { machine })));
    svg.append(svgElement("rect", { x: 90, y: i * 22 + 4, width: Math.max(1, share * 200), height: 14, fill: COLOURS[i % COLOURS.length] }));
    svg.append(svgElement("text", { x: 296, y: i * 22 + 15, "font-size": 13, fill: "#2b1d14" },
      new Intl.NumberFormat(LOCALE, { style: "percent" }).format(share)));
  });
  $("chart-share").replaceChildren(svg);
}

function startDashboard() {
  const source = new EventSource("/api/admin/events");
  source.addEventListener("dashboard", (event) => {
    $("connection").textContent = "";
    render(JSON.parse(event.data));
  });
  source.onerror = () => { $("connection").textContent = t("admin.reconnecting"); };
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
  if (!response) return t("login.unreachable");
  if (response.status === 401) return t("login.wrong");
  if (response.status === 429) return t("login.throttled", { seconds: Number(response.headers.get("Retry-After")) || 1 });
  if (response.status === 400) return t("login.too_long");
  return t("login.failed", { status: response.status });
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
