// The pickup board, for a wall screen: what is brewing and what is ready, by ticket and first
// name, live by Server-Sent Events. Names are written as text, never as markup.
"use strict";

const $ = (id) => document.getElementById(id);

function ticketItem(item, ready) {
  const li = document.createElement("li");
  li.className = "ticket-item";
  const number = document.createElement("span");
  number.className = "number";
  number.textContent = String(item.ticket).padStart(3, "0");
  const name = document.createElement("span");
  name.className = "name";
  name.textContent = item.name;
  const where = document.createElement("span");
  where.className = "where";
  where.textContent = item.machine ? t(ready ? "board.pickup_at" : "board.at", { machine: item.machine }) : "";
  li.append(number, " ", name, " ", where);
  li.dataset.ticket = item.ticket;
  return li;
}

// A busy board lists the first tickets of a column and counts the others.
function renderMore(id, more) {
  $(id).hidden = !more;
  $(id).textContent = more ? t("board.more", { n: formatNumber(more) }) : "";
}

function renderBoard(board) {
  $("brewing").replaceChildren(...board.brewing.map((item) => ticketItem(item, false)));
  $("ready").replaceChildren(...board.ready.map((item) => ticketItem(item, true)));
  renderMore("brewing-more", board.more_brewing);
  renderMore("ready-more", board.more_ready);
  $("brewing-empty").hidden = board.brewing.length > 0;
  $("ready-empty").hidden = board.ready.length > 0;
}

function startBoard() {
  const source = new EventSource("/api/board/events");
  source.addEventListener("board", (event) => {
    $("connection").textContent = "";
    renderBoard(JSON.parse(event.data));
  });
  // The screen keeps what it shows, and says it may be out of date.
  source.addEventListener("unavailable", () => { $("connection").textContent = t("board.unavailable"); });
  source.onerror = () => { $("connection").textContent = t("board.reconnecting"); };
}

startBoard();
