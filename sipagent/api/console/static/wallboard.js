// The wallboard: per queue, callers waiting, the longest wait (ticking here
// each second from the snapshot's value, no server polling), EWT, agents by
// state, and today's and the last 15 minutes' KPIs, coloured by the
// thresholds the engine sends.  ?big=1 is the big-screen mode: large type,
// no navigation, full screen when the browser allows it.

import {get} from "./api.js";
import {duration, el, now, number, percent} from "./dom.js";
import * as live from "./live.js";

const TICK_MS = 1000;

// Worse when higher (waiting, waits, abandon rate) or when lower (SL).
function level(value, warn, alarm, lowerIsWorse = false) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "";
  if (alarm !== undefined && alarm !== null && (lowerIsWorse ? value < alarm : value >= alarm)) return "alarm";
  if (warn !== undefined && warn !== null && (lowerIsWorse ? value < warn : value >= warn)) return "warn";
  return "ok";
}

function figure(label, value, cls = "", attrs = {}) {
  return el("div", {class: `figure ${cls}`, ...attrs},
    el("span", {class: "value"}, value), el("span", {class: "label"}, label));
}

function slKeys(queues) {
  const keys = new Set();
  for (const q of Object.values(queues)) {
    for (const window of [q.today, q.last_15m]) {
      for (const key of Object.keys((window && window.service_level) || {})) keys.add(key);
    }
  }
  return [...keys].sort();
}

// "answered:20" -> "SL 20 s (answered)"
function slLabel(key) {
  const [variant, threshold] = key.split(":");
  return `SL ${threshold} s${variant ? ` (${variant.replaceAll("_", " ")})` : ""}`;
}

function kpiTable(q, keys, t) {
  const rows = [
    ["Offered", (k) => number(k.offered)],
    ["Answered", (k) => number(k.answered)],
    ["Abandoned", (k) => number(k.abandoned)],
    ["Abandon %", (k) => percent(k.abandon_rate), (k) => level(k.abandon_rate, t.abandon_warn, t.abandon_alarm)],
    ...keys.map((key) => [slLabel(key), (k) => percent((k.service_level || {})[key]),
                          (k) => level((k.service_level || {})[key], t.sl_warn, t.sl_alarm, true)]),
    ["ASA", (k) => duration(k.asa)],
    ["AHT", (k) => duration(k.aht), (k) => level(k.aht, t.long_call, undefined)],
    ["Callbacks pending", (k) => number(k.callbacks_pending)],
  ];
  const windows = [["Today", q.today || {}], ["Last 15 min", q.last_15m || {}]];
  return el("table", {class: "kpis"},
    el("thead", {}, el("tr", {}, el("th", {scope: "col"}, ""),
                       windows.map(([name]) => el("th", {scope: "col"}, name)))),
    el("tbody", {}, rows.map(([name, show, colour]) => el("tr", {},
      el("th", {scope: "row"}, name),
      windows.map(([, k]) => el("td", {class: `num ${colour ? colour(k) : ""}`}, show(k)))))));
}

function agentsLine(a = {}) {
  const paused = Object.entries(a.paused || {});
  const pausedTotal = paused.reduce((sum, [, n]) => sum + n, 0);
  return el("div", {class: "agents-line"},
    figure("staffed", number(a.staffed), "small"),
    figure("available", number(a.available), "small"),
    figure("on call", number(a.on_call), "small"),
    figure("ringing", number(a.ringing), "small"),
    figure("wrap-up", number(a.wrap_up), "small"),
    figure("paused", number(pausedTotal), "small"),
    paused.length ? el("ul", {class: "reasons"},
      paused.map(([reason, n]) => el("li", {}, `${reason || "no reason"}: ${n}`))) : null);
}

export function mount(view, params, {go, say}) {
  const big = params.get("big") === "1";
  document.body.classList.toggle("big", big);
  const board = el("div", {class: "board", id: "wallboard"});
  const heading = el("div", {class: "board-head"},
    el("h1", {}, "Wallboard"),
    el("span", {class: "clock", id: "wallboard-clock"}),
    big
      ? el("button", {type: "button", class: "quiet", id: "leave-big", onclick: () => {
          if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
          go("wallboard");
        }}, "Leave big screen")
      : el("button", {type: "button", id: "big-screen", onclick: () => {
          document.documentElement.requestFullscreen?.().catch(() => {});
          go("wallboard", "big=1");
        }}, "Big screen"));
  view.replaceChildren(heading, board);
  let snapshot = null;
  let fetchedAt = 0;
  const clockNode = heading.querySelector("#wallboard-clock");

  function tick() {
    clockNode.textContent = new Date().toLocaleTimeString();
    if (!snapshot) return;
    const t = snapshot.thresholds || {};
    for (const node of board.querySelectorAll("[data-longest]")) {
      const q = snapshot.queues[node.dataset.longest];
      const wait = q.waiting > 0 ? q.longest_wait + (now() - fetchedAt) : 0;
      node.querySelector(".value").textContent = duration(wait);
      node.className = `figure ${level(wait, t.longest_wait_warn, t.longest_wait_alarm)}`;
    }
  }

  function render() {
    const t = snapshot.thresholds || {};
    const names = Object.keys(snapshot.queues).sort();
    const keys = slKeys(snapshot.queues);
    board.replaceChildren(...names.map((name) => {
      const q = snapshot.queues[name];
      return el("section", {class: "queue-card", dataset: {queue: name}},
        el("h2", {}, name),
        el("div", {class: "figures"},
          figure("waiting", number(q.waiting), level(q.waiting, t.waiting_warn, t.waiting_alarm),
                 {dataset: {waiting: name}}),
          figure("longest wait", duration(q.longest_wait), "", {dataset: {longest: name}}),
          figure("EWT", duration(q.ewt))),
        agentsLine(q.agents),
        q.talking !== undefined ? el("p", {class: `calls-line ${q.long_calls ? "warn" : ""}`},
          `${q.talking} on call · longest call ${duration(q.longest_call)}`,
          q.long_calls ? ` · ${q.long_calls} over ${duration(t.long_call)}` : "") : null,
        kpiTable(q, keys, t));
    }));
    if (!names.length) board.replaceChildren(el("p", {class: "msg"}, "No queues configured."));
    tick();
  }

  const refresh = live.singleFlight(async () => {
    try {
      snapshot = await get("/api/wallboard");
      fetchedAt = now();
      render();
    } catch (e) {
      if (e.status !== 401) say(`Wallboard: ${e.message}`, "error");
    }
  });

  const unsubscribe = live.subscribe(
    ["call.*", "queue.*", "offer.*", "bridge.*", "agent.*", "wrapup.*", "transfer.*"], refresh);
  const ticker = setInterval(tick, TICK_MS);    // the local clock only
  refresh();
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
