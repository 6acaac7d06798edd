// Reports: interval KPIs (table and SVG charts of service level and abandon
// rate), the agent table, CSV exports, and the staffing what-if: that day's
// real arrivals replayed through the ACD's simulator with N agents.
// The print stylesheet (console.css, @media print) leaves tables and charts.

import {get, optional, post, withQuery} from "./api.js";
import {duration, el, number, percent, table} from "./dom.js";
import {ratioChart} from "./charts.js";

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

// The engine's [console] timezone: reports speak of its days and hours.
let timeZone;

// An interval's start as a label: "14:15" (or the date for daily rows).
function label(start, interval) {
  const d = typeof start === "number" ? new Date(start * 1000) : new Date(start);
  if (Number.isNaN(d.getTime())) return String(start);
  try {
    if (interval === "1d") return d.toLocaleDateString([], {timeZone});
    return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZone});
  } catch {
    timeZone = undefined;      // a zone this browser does not know: its own
    return label(start, interval);
  }
}

// Chart series: one per SL variant for one queue; with several queues, one
// per queue (of the first variant).  Points are the distinct interval starts.
function chartData(rows, keys, interval) {
  const starts = [...new Set(rows.map((r) => String(r.start)))];
  const queues = [...new Set(rows.map((r) => r.queue ?? ""))];
  const at = new Map(rows.map((r) => [`${r.start}|${r.queue ?? ""}`, r]));
  const pick = (queue, f) => starts.map((s) => {
    const r = at.get(`${s}|${queue}`);
    return r ? f(r) : null;
  });
  const labels = starts.map((s) => label(Number.isNaN(Number(s)) ? s : Number(s), interval));
  if (queues.length === 1) {
    return {labels,
            sl: keys.map((k) => ({name: slLabel(k), values: pick(queues[0], (r) => (r.service_level || {})[k] ?? null)})),
            abandon: [{name: "abandon rate", values: pick(queues[0], (r) => r.abandon_rate ?? null)}]};
  }
  return {labels,
          sl: queues.map((q) => ({name: `${q} ${keys[0] ? slLabel(keys[0]) : "SL"}`, values: pick(q, (r) => (r.service_level || {})[keys[0]] ?? null)})),
          abandon: queues.map((q) => ({name: `${q} abandon`, values: pick(q, (r) => r.abandon_rate ?? null)}))};
}

// "answered:20" -> "SL 20 s (answered)"
function slLabel(key) {
  const [variant, threshold] = key.split(":");
  return `SL ${threshold} s${variant ? ` (${variant.replaceAll("_", " ")})` : ""}`;
}

function slKeys(rows, field = "service_level") {
  const keys = new Set();
  for (const r of rows) for (const k of Object.keys(r[field] || {})) keys.add(k);
  return [...keys].sort();
}

function field(labelText, input) {
  return el("label", {class: "field"}, el("span", {}, labelText), input);
}

function queueSelect(id, queues, withAll) {
  return el("select", {id, name: "queue"},
    withAll ? el("option", {value: ""}, "all queues") : null,
    queues.map((q) => el("option", {value: q}, q)));
}

function pauses(byReason) {
  const parts = Object.entries(byReason || {}).filter(([, v]) => v > 0);
  return parts.length ? parts.map(([k, v]) => `${k || "no reason"} ${duration(v)}`).join(", ") : "–";
}

// Per agent (and day): what it did and how busy it was.
function agentTable(rows) {
  const columns = [
    ["Day", (r) => label(r.start ?? r.start_epoch, "1d")], ["Agent", (r) => r.agent],
    ["Handled", (r) => number(r.handled), "num"], ["Offers", (r) => number(r.offers), "num"],
    ["Missed", (r) => number(r.missed), "num"], ["Talk", (r) => duration(r.talk_seconds), "num"],
    ["Wrap-up", (r) => duration(r.wrap_up_seconds), "num"], ["AHT", (r) => duration(r.aht), "num"],
    ["Logged in", (r) => duration(r.logged_in_seconds), "num"], ["Idle", (r) => duration(r.idle_seconds), "num"],
    ["Paused", (r) => duration(r.pause_seconds), "num"], ["Pauses", (r) => pauses(r.pause_by_reason)],
    ["Occupancy", (r) => percent(r.occupancy), "num"],
  ];
  return table(columns, rows, {class: "agent-report", id: "agent-table"});
}

export function mount(view, params, {say}) {
  const from = el("input", {type: "date", id: "report-from", value: today(), required: true});
  const to = el("input", {type: "date", id: "report-to", value: today(), required: true});
  const interval = el("select", {id: "report-interval"},
    ["15m", "1h", "1d"].map((v) => el("option", {value: v}, v)));
  const queueBox = el("span", {});
  const form = el("form", {class: "filters no-print", id: "report-form"},
    field("From", from), field("To", to), field("Interval", interval), queueBox,
    el("button", {type: "submit"}, "Show"),
    el("button", {type: "button", onclick: () => window.print()}, "Print"));
  const out = el("div", {id: "report"});

  const wDate = el("input", {type: "date", id: "whatif-date", value: today(), required: true});
  const wAgents = el("input", {type: "number", id: "whatif-agents", min: 1, max: 500, value: 3, required: true});
  const wInterval = el("select", {id: "whatif-interval"}, ["15m", "1h"].map((v) => el("option", {value: v}, v)));
  const wQueueBox = el("span", {});
  const whatifForm = el("form", {class: "filters no-print", id: "whatif-form"},
    field("Day", wDate), wQueueBox, field("Agents", wAgents), field("Interval", wInterval),
    el("button", {type: "submit"}, "Predict"));
  const whatifOut = el("div", {id: "whatif"});

  view.replaceChildren(el("h1", {}, "Reports"), form, out,
    el("section", {class: "panel", id: "whatif-panel"}, el("h2", {}, "Staffing what-if"),
       el("p", {class: "sub no-print"}, "The day's real arrivals and handle times, replayed with N agents."),
       whatifForm, whatifOut));

  let queues = [];
  (async () => {
    try {
      const board = await optional("/api/wallboard");
      timeZone = board?.timezone;
      queues = Object.keys((board || await get("/api/queues")).queues || {}).sort();
    } catch (e) {
      if (e.status !== 401) say(`Queues: ${e.message}`, "error");
    }
    queueBox.replaceChildren(field("Queue", queueSelect("report-queue", queues, true)));
    wQueueBox.replaceChildren(field("Queue", queueSelect("whatif-queue", queues, false)));
  })();

  async function show() {
    const q = {from: from.value, to: to.value, interval: interval.value,
               queue: view.querySelector("#report-queue")?.value || ""};
    const agentQ = {from: q.from, to: q.to, queue: q.queue, interval: "1d"};
    out.replaceChildren(el("p", {class: "msg"}, "Loading…"));
    try {
      const [kpis, agents] = await Promise.all([
        get(withQuery("/api/reports/intervals", q)), get(withQuery("/api/reports/agents", agentQ))]);
      const rows = kpis.intervals || [];
      const keys = slKeys(rows);
      const chart = chartData(rows, keys, q.interval);
      // The table lists intervals with calls; the charts show the whole span.
      const busy = rows.filter((r) => r.offered || r.answered || r.abandoned);
      const table = el("table", {class: "intervals", id: "interval-table"},
        el("thead", {}, el("tr", {}, ["Start", "Queue", "Offered", "Answered", "Abandoned", "Abandon %",
          ...keys.map(slLabel), "ASA", "AHT"].map((h) => el("th", {scope: "col"}, h)))),
        el("tbody", {}, busy.map((r) => el("tr", {},
          el("td", {}, label(r.start, q.interval)), el("td", {}, r.queue ?? "all"),
          el("td", {class: "num"}, number(r.offered)), el("td", {class: "num"}, number(r.answered)),
          el("td", {class: "num"}, number(r.abandoned)), el("td", {class: "num"}, percent(r.abandon_rate)),
          keys.map((k) => el("td", {class: "num"}, percent((r.service_level || {})[k]))),
          el("td", {class: "num"}, duration(r.asa)), el("td", {class: "num"}, duration(r.aht))))));
      const charts = el("div", {class: "charts"},
        ratioChart({title: "Service level per interval", id: "chart-sl", labels: chart.labels, series: chart.sl}),
        ratioChart({title: "Abandon rate per interval", id: "chart-abandon", labels: chart.labels, series: chart.abandon}));
      const agentRows = agents.agents || [];
      out.replaceChildren(
        el("section", {class: "panel"}, el("h2", {}, "Interval KPIs"),
          el("p", {class: "no-print"}, el("a", {href: withQuery("/api/reports/intervals", {...q, format: "csv"}),
                                                download: "", id: "csv-intervals"}, "Export CSV")),
          busy.length ? [charts, table, rows.length > busy.length
            ? el("p", {class: "sub"}, `${rows.length - busy.length} intervals without calls not listed.`) : null]
            : el("p", {class: "msg"}, "No calls in this period.")),
        el("section", {class: "panel"}, el("h2", {}, "Agents"),
          el("p", {class: "no-print"}, el("a", {href: withQuery("/api/reports/agents", {...agentQ, format: "csv"}),
                                                download: "", id: "csv-agents"}, "Export CSV")),
          agentRows.length ? agentTable(agentRows, q.interval)
            : el("p", {class: "msg"}, "No agent activity in this period.")));
    } catch (e) {
      out.replaceChildren(el("p", {class: "msg error", role: "alert"}, `Report: ${e.message}`));
    }
  }

  async function whatif() {
    const body = {date: wDate.value, queue: view.querySelector("#whatif-queue")?.value || "",
                  agents: Number(wAgents.value), interval: wInterval.value};
    whatifOut.replaceChildren(el("p", {class: "msg"}, "Simulating…"));
    try {
      const answer = await post("/api/reports/whatif", body);
      const rows = answer.intervals || [];
      const labels = rows.map((r) => label(r.start, body.interval));
      const total = answer.total || {};
      whatifOut.replaceChildren(
        el("p", {class: "sub", id: "whatif-summary"},
          `${answer.calls ?? "?"} calls that day; SL ${percent(total.actual?.sl)} actual, `
          + `${percent(total.predicted?.sl)} predicted with ${body.agents} agents; abandoned `
          + `${percent(total.actual?.abandon_rate)} actual, ${percent(total.predicted?.abandon_rate)} predicted.`),
        ratioChart({title: `Service level: actual vs ${body.agents} agents`, id: "chart-whatif", labels,
                    series: [{name: "actual", values: rows.map((r) => r.actual?.sl ?? null)},
                             {name: `predicted (${body.agents} agents)`, values: rows.map((r) => r.predicted?.sl ?? null)}]}),
        el("table", {class: "whatif", id: "whatif-table"},
          el("thead", {}, el("tr", {}, ["Start", "Offered", "SL actual", "SL predicted", "Abandon actual",
            "Abandon predicted"].map((h) => el("th", {scope: "col"}, h)))),
          el("tbody", {}, rows.map((r, i) => el("tr", {},
            el("td", {}, labels[i]), el("td", {class: "num"}, number(r.actual?.offered)),
            el("td", {class: "num"}, percent(r.actual?.sl)), el("td", {class: "num"}, percent(r.predicted?.sl)),
            el("td", {class: "num"}, percent(r.actual?.abandon_rate)),
            el("td", {class: "num"}, percent(r.predicted?.abandon_rate)))))));
    } catch (e) {
      whatifOut.replaceChildren(el("p", {class: "msg error", role: "alert"}, `What-if: ${e.message}`));
    }
  }

  form.addEventListener("submit", (e) => { e.preventDefault(); show(); });
  whatifForm.addEventListener("submit", (e) => { e.preventDefault(); whatif(); });
  show();
  return () => {};
}
