// Calls: every live call and leg.  GET /api/calls lists the connected queue
// calls; GET /api/channels (when the engine has it) every leg: flows,
// waiting callers with their position, calls with an agent.

import {enc, get, optional, post} from "./api.js";
import {compact, duration, el, now} from "./dom.js";
import * as live from "./live.js";

// Columns of /api/channels shown first, in this order; any others after.
const CHANNEL_ORDER = ["call_id", "kind", "direction", "state", "phase", "flow", "caller",
                       "called", "queue", "position", "agent", "seconds", "duration"];
const SECONDS = new Set(["seconds", "duration", "wait", "talk_seconds", "hold_seconds", "age"]);

function channelColumns(rows) {
  const keys = new Set();
  for (const row of rows) for (const key of Object.keys(row)) keys.add(key);
  return [...CHANNEL_ORDER.filter((k) => keys.has(k)), ...[...keys].filter((k) => !CHANNEL_ORDER.includes(k)).sort()];
}

export function mount(view, params, {say}) {
  const conversations = el("div", {id: "conversations"});
  const channels = el("div", {id: "channels"});
  view.replaceChildren(el("h1", {}, "Calls"),
    el("section", {class: "panel"}, el("h2", {}, "Connected calls"), conversations),
    el("section", {class: "panel", id: "channels-panel"}, el("h2", {}, "All legs"), channels));
  let fetchedAt = now();

  async function monitor(callId, mode) {
    try {
      await post(`/api/calls/${enc(callId)}/monitor`, {mode});
      say(`${mode}: your phone rings`);
    } catch (e) {
      if (e.status !== 401) say(`${mode}: ${e.message}`, "error");
    }
  }

  function ticking(seconds) {
    return el("span", {class: "ticking", dataset: {base: seconds ?? "", at: fetchedAt}}, duration(seconds));
  }

  function renderConversations(rows) {
    const head = ["Call", "Queue", "Caller", "Agent", "Phase", "Talk", "Held", "Monitor", ""];
    conversations.replaceChildren(rows.length ? el("table", {class: "calls"},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows.map((c) => el("tr", {dataset: {call: c.call_id}},
        el("td", {class: "mono"}, c.call_id), el("td", {}, c.queue || "–"),
        el("td", {}, c.caller || "–"), el("td", {}, c.agent || "–"),
        el("td", {}, el("span", {class: `badge phase-${c.phase}`}, c.phase || "–")),
        el("td", {class: "num"}, ticking(c.talk_seconds)),
        el("td", {class: "num"}, duration(c.hold_seconds)),
        el("td", {}, c.monitor || "–"),
        el("td", {}, el("div", {class: "actions"}, ["listen", "whisper", "barge"].map((mode) =>
          el("button", {type: "button", class: `monitor ${mode}`, onclick: () => monitor(c.call_id, mode)},
             mode[0].toUpperCase() + mode.slice(1))))))))) 
      : el("p", {class: "msg"}, "No connected calls."));
  }

  function renderChannels(rows) {
    if (rows === null) {
      view.querySelector("#channels-panel").hidden = true;
      return;
    }
    const columns = channelColumns(rows);
    channels.replaceChildren(rows.length ? el("table", {class: "legs"},
      el("thead", {}, el("tr", {}, columns.map((c) => el("th", {scope: "col"}, c.replaceAll("_", " "))))),
      el("tbody", {}, rows.map((row) => el("tr", {dataset: {call: row.call_id ?? ""}},
        columns.map((c) => el("td", {class: SECONDS.has(c) ? "num" : ""},
          SECONDS.has(c) && typeof row[c] === "number" ? ticking(row[c]) : compact(row[c])))))))
      : el("p", {class: "msg"}, "No calls."));
  }

  function tick() {
    for (const node of view.querySelectorAll(".ticking")) {
      if (node.dataset.base !== "") {
        node.textContent = duration(Number(node.dataset.base) + now() - Number(node.dataset.at));
      }
    }
  }

  const refresh = live.singleFlight(async () => {
    try {
      const [calls, legs] = await Promise.all([get("/api/calls"), optional("/api/channels")]);
      fetchedAt = now();
      renderConversations(calls.calls || []);
      renderChannels(legs === null ? null : (legs.channels || legs.calls || []));
    } catch (e) {
      if (e.status !== 401) say(`Calls: ${e.message}`, "error");
    }
  });
  const unsubscribe = live.subscribe(["call.*", "queue.*", "offer.*", "bridge.*", "transfer.*", "monitor.*"], refresh);
  const ticker = setInterval(tick, 1000);   // the local clock only
  refresh();
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
