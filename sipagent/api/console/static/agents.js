// Agents: state and time in state, pause reason, the call each is on or
// ringing with, today's handled and missed calls, login time; actions to
// pause (with a reason), make ready, log in or out, and to listen to,
// whisper to or barge into an agent's call (the supervisor's phone rings).

import {enc, get, post} from "./api.js";
import {clock, duration, el, now, number} from "./dom.js";
import * as live from "./live.js";

export const PAUSE_REASONS = ["break", "lunch", "meeting", "training", "after-call work"];
const STATE_NAMES = {logged_out: "logged out", available: "available", offered: "ringing",
                     busy: "on call", wrap_up: "wrap-up", paused: "paused"};

export function stateName(state) {
  return STATE_NAMES[state] || state || "–";
}

export function reasonList(id) {
  return el("datalist", {id}, PAUSE_REASONS.map((r) => el("option", {value: r})));
}

function callCell(row, fetchedAt) {
  if (row.call) {
    const c = row.call;
    return el("div", {class: "call"},
      el("span", {class: "caller"}, c.caller || "unknown"), " · ", c.queue || "",
      " · ", el("span", {class: "ticking", dataset: {base: c.talk_seconds ?? "", at: fetchedAt}},
                duration(c.talk_seconds)),
      c.on_hold ? el("span", {class: "badge held"}, "on hold") : null);
  }
  if (row.ringing) {
    return el("div", {class: "call ringing"}, "ringing: ",
      el("span", {class: "caller"}, row.ringing.caller || "unknown"), " · ", row.ringing.queue || "");
  }
  return "–";
}

export function mount(view, params, {say}) {
  const list = el("div", {id: "agents"});
  view.replaceChildren(el("h1", {}, "Agents"), reasonList("pause-reasons"), list);
  let fetchedAt = now();

  async function act(path, body, what) {
    try {
      await post(path, body);
      say(`${what}: done`);
      refresh();
    } catch (e) {
      if (e.status !== 401) say(`${what}: ${e.message}`, "error");
    }
  }

  function actions(row) {
    const id = row.agent;
    const base = `/api/agents/${enc(id)}`;
    const reason = el("input", {class: "reason", list: "pause-reasons", placeholder: "reason",
                                "aria-label": `pause reason for ${id}`, maxlength: 64});
    const out = [];
    if (row.state === "logged_out") {
      out.push(el("button", {type: "button", onclick: () => act(`${base}/login`, {}, `log in ${id}`)}, "Log in"));
    } else {
      if (row.state !== "paused") {
        out.push(reason, el("button", {type: "button", class: "pause",
          onclick: () => act(`${base}/pause`, {reason: reason.value.trim()}, `pause ${id}`)}, "Pause"));
      }
      if (row.state === "paused") {
        out.push(el("button", {type: "button", class: "ready", onclick: () => act(`${base}/ready`, {}, `ready ${id}`)}, "Ready"));
      }
      if (row.state === "wrap_up") {
        out.push(el("button", {type: "button", onclick: () => act(`${base}/end_wrap_up`, {}, `end wrap-up ${id}`)}, "End wrap-up"));
      }
      out.push(el("button", {type: "button", class: "logout", onclick: () => act(`${base}/logout`, {}, `log out ${id}`)}, "Log out"));
    }
    if (row.call) {
      const call = `/api/calls/${enc(row.call.call_id)}/monitor`;
      for (const mode of ["listen", "whisper", "barge"]) {
        out.push(el("button", {type: "button", class: `monitor ${mode}`,
          onclick: () => act(call, {mode}, `${mode} to ${id}`)}, mode[0].toUpperCase() + mode.slice(1)));
      }
    }
    return el("div", {class: "actions"}, out);
  }

  function render(rows) {
    const head = ["Agent", "State", "In state", "Pause reason", "Call", "Handled", "Missed", "Logged in", ""];
    list.replaceChildren(el("table", {class: "agents"},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows.map((row) => el("tr", {dataset: {agent: row.agent, state: row.state}},
        el("td", {}, el("strong", {}, row.agent), row.name ? el("div", {class: "sub"}, row.name) : null),
        el("td", {}, el("span", {class: `badge state-${row.state}`}, stateName(row.state))),
        el("td", {class: "num"}, el("span", {class: "since", dataset: {since: row.since ?? ""}},
                                     row.since ? duration(now() - row.since) : "–")),
        el("td", {}, row.pause_reason || "–"),
        el("td", {}, callCell(row, fetchedAt)),
        el("td", {class: "num"}, number(row.handled_today)),
        el("td", {class: "num"}, number(row.missed_today)),
        el("td", {}, clock(row.login_at)),
        el("td", {}, actions(row)))))));
    if (!rows.length) list.replaceChildren(el("p", {class: "msg"}, "No agents configured."));
  }

  function tick() {
    for (const node of list.querySelectorAll("[data-since]")) {
      if (node.dataset.since) node.textContent = duration(now() - Number(node.dataset.since));
    }
    for (const node of list.querySelectorAll(".ticking")) {
      if (node.dataset.base !== "") {
        node.textContent = duration(Number(node.dataset.base) + now() - Number(node.dataset.at));
      }
    }
  }

  const refresh = live.singleFlight(async () => {
    try {
      const answer = await get("/api/agents");
      fetchedAt = now();
      render(answer.agents || []);
    } catch (e) {
      if (e.status !== 401) say(`Agents: ${e.message}`, "error");
    }
  });
  const unsubscribe = live.subscribe(["agent.*", "offer.*", "bridge.*", "call.*", "wrapup.*", "monitor.*"], refresh);
  const ticker = setInterval(tick, 1000);   // the local clock only
  refresh();
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
