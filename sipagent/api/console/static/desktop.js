// The agent desktop: the agent's own state with ready and pause buttons,
// the screen pop of the call ringing or connected (caller, name, IVR
// choices, flow data, the caller's recent calls), call controls (hold,
// resume, transfer, recording), and wrap-up with a disposition code.

import {enc, get, post} from "./api.js";
import {compact, dateTime, duration, el, now, table} from "./dom.js";
import * as live from "./live.js";
import {reasonList, stateName} from "./agents.js";

// /api/me: the user, and for an agent its row (as in GET /api/agents).
function agentRow(me) {
  return me.row || {};
}

function dl(pairs) {
  return el("dl", {class: "facts"}, pairs.filter(([, v]) => v !== undefined).map(([k, v]) =>
    [el("dt", {}, k), el("dd", {}, v === null || v === "" ? "–" : v)]));
}

export function mount(view, params, {session, say}) {
  const agentId = session.agent;
  const stateBox = el("section", {class: "panel", id: "my-state"});
  const popBox = el("section", {class: "panel", id: "screen-pop", hidden: true});
  const wrapBox = el("section", {class: "panel", id: "wrap-up", hidden: true});
  view.replaceChildren(el("h1", {}, `Desktop · ${agentId ?? session.user}`), reasonList("my-pause-reasons"),
                       stateBox, popBox, wrapBox);
  let row = null;
  let fetchedAt = now();
  let popFor = null;          // the call id the pop shows
  let lastCall = null;        // the call to give a disposition for
  let dispositions = [];

  async function act(path, body, what) {
    try {
      const answer = await post(path, body);
      say(`${what}: done`);
      refresh();
      return answer;
    } catch (e) {
      if (e.status !== 401) say(`${what}: ${e.message}`, "error");
      return null;
    }
  }

  function renderState() {
    const base = `/api/agents/${enc(agentId)}`;
    const reason = el("input", {id: "my-pause-reason", list: "my-pause-reasons", placeholder: "reason", maxlength: 64,
                                "aria-label": "pause reason"});
    const buttons = [];
    const state = row?.state;
    if (state === "logged_out") buttons.push(el("button", {type: "button", id: "my-login", onclick: () => act(`${base}/login`, {}, "log in")}, "Log in to the queues"));
    if (state === "paused") buttons.push(el("button", {type: "button", id: "my-ready", class: "ready", onclick: () => act(`${base}/ready`, {}, "ready")}, "Ready"));
    if (state && state !== "paused" && state !== "logged_out") {
      buttons.push(reason, el("button", {type: "button", id: "my-pause", class: "pause",
        onclick: () => act(`${base}/pause`, {reason: reason.value.trim()}, "pause")}, "Pause"));
    }
    if (state === "wrap_up") buttons.push(el("button", {type: "button", id: "my-end-wrap-up", onclick: () => act(`${base}/end_wrap_up`, {}, "end wrap-up")}, "End wrap-up"));
    if (state && state !== "logged_out") buttons.push(el("button", {type: "button", id: "my-logout", class: "logout", onclick: () => act(`${base}/logout`, {}, "log out")}, "Log out of the queues"));
    stateBox.replaceChildren(
      el("div", {class: "my-state"},
        el("span", {class: `badge big state-${state}`, id: "my-state-name"}, stateName(state)),
        el("span", {class: "since", id: "my-since", dataset: {since: row?.since ?? ""}}, row?.since ? duration(now() - row.since) : ""),
        row?.pause_reason ? el("span", {class: "sub"}, ` (${row.pause_reason})`) : null),
      el("div", {class: "actions"}, buttons));
  }

  function callControls(callId, call) {
    const path = `/api/calls/${enc(callId)}`;
    const target = el("input", {id: "transfer-target", placeholder: "queue:sales, agent:bob, number:…", maxlength: 256,
                                "aria-label": "transfer target"});
    return el("div", {class: "actions", id: "call-controls"},
      call?.on_hold
        ? el("button", {type: "button", id: "call-resume", onclick: () => act(`${path}/resume`, {}, "resume")}, "Resume")
        : el("button", {type: "button", id: "call-hold", onclick: () => act(`${path}/hold`, {}, "hold")}, "Hold"),
      target,
      el("button", {type: "button", id: "call-transfer", onclick: () => act(`${path}/transfer`, {target: target.value.trim()}, "transfer")}, "Transfer"),
      ["start", "pause", "resume", "stop"].map((action) => el("button", {type: "button", class: "record", id: `record-${action}`,
        onclick: () => act(`${path}/recording`, {action}, `recording ${action}`)}, `Record ${action}`)));
  }

  function renderPop(pop, phase, call) {
    const ivr = pop.ivr || [];
    const data = Object.entries(pop.data || {});
    const history = pop.history || [];
    popBox.hidden = false;
    popBox.replaceChildren(
      el("h2", {}, phase === "ringing" ? "Incoming call" : "On call"),
      el("div", {class: `pop ${phase}`},
        el("div", {class: "pop-caller"},
          el("span", {class: "caller-name", id: "pop-name"}, pop.caller_name || "unknown caller"),
          el("span", {class: "caller-number mono", id: "pop-number"}, pop.caller || "")),
        dl([["Queue", pop.queue], ["Dialled", pop.called],
            ["Talk time", phase === "connected" ? el("span", {class: "ticking", dataset: {base: call?.talk_seconds ?? "", at: fetchedAt}},
                                                      duration(call?.talk_seconds)) : undefined]])),
      el("h3", {}, "IVR selections"),
      ivr.length ? el("ol", {class: "ivr", id: "pop-ivr"}, ivr.map((step) =>
        el("li", {}, `${step.prompt ?? step.menu ?? "menu"}: `, el("strong", {}, compact(step.digits))))) : el("p", {class: "sub"}, "none"),
      el("h3", {}, "Flow data"),
      data.length ? el("dl", {class: "facts", id: "pop-data"}, data.map(([k, v]) => [el("dt", {}, k), el("dd", {}, compact(v))]))
        : el("p", {class: "sub"}, "none"),
      el("h3", {}, "This caller's recent calls"),
      history.length ? table([
        ["When", (r) => dateTime(r.start)], ["Queue", (r) => r.queue], ["Agent", (r) => r.agent],
        ["Outcome", (r) => r.outcome], ["Wait", (r) => duration(r.wait), "num"],
        ["Talk", (r) => duration(r.talk), "num"], ["Disposition", (r) => r.disposition],
        ["Note", (r) => r.disposition_note]], history, {class: "history", id: "pop-history"})
        : el("p", {class: "sub"}, "no earlier calls"),
      ...(phase === "connected" ? [callControls(pop.call_id, call)] : []));
  }

  function renderWrapUp() {
    if (!lastCall) {
      wrapBox.hidden = true;
      return;
    }
    // The engine's codes when it tells them ([desktop] dispositions), else typed.
    const code = dispositions.length
      ? el("select", {id: "disposition-code", required: true}, dispositions.map((d) => el("option", {value: d}, d)))
      : el("input", {id: "disposition-code", required: true, maxlength: 40, placeholder: "code",
                     pattern: "[A-Za-z0-9_.\\-]{1,40}"});
    const note = el("textarea", {id: "disposition-note", rows: 2, maxlength: 1000});
    const form = el("form", {id: "disposition-form", class: "grid-form"},
      el("label", {class: "field"}, el("span", {}, "Disposition"), code),
      el("label", {class: "field"}, el("span", {}, "Note"), note),
      el("div", {class: "buttons"}, el("button", {type: "submit", id: "disposition-save"}, "Save disposition")));
    const callId = lastCall;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const saved = await act(`/api/calls/${enc(callId)}/disposition`, {code: code.value, note: note.value}, "disposition");
      if (saved !== null) {
        wrapBox.replaceChildren(el("h2", {}, "Wrap-up"),
          el("p", {class: "msg ok", id: "disposition-saved"}, `Disposition ${code.value} saved for call ${callId}.`));
        lastCall = null;
      }
    });
    wrapBox.hidden = false;
    wrapBox.replaceChildren(el("h2", {}, "Wrap-up"), el("p", {class: "sub"}, `Call ${callId}`), form);
  }

  async function showPop(callId, phase, call) {
    try {
      const pop = await get(`/api/calls/${enc(callId)}/pop`);
      if (Array.isArray(pop.dispositions)) dispositions = pop.dispositions;
      renderPop(pop, phase, call);
    } catch (e) {
      if (e.status === 404) return;      // the call ended in between
      if (e.status !== 401) say(`Screen pop: ${e.message}`, "error");
    }
  }

  const refresh = live.singleFlight(async () => {
    let me;
    try {
      me = await get("/api/me");
    } catch (e) {
      if (e.status !== 401) say(`Desktop: ${e.message}`, "error");
      return;
    }
    fetchedAt = now();
    row = agentRow(me);
    if (Array.isArray(me.dispositions)) dispositions = me.dispositions;
    renderState();
    const current = row.call || row.ringing || null;
    if (current) {
      const phase = row.call ? "connected" : "ringing";
      const key = `${current.call_id}/${phase}/${row.call?.on_hold ? "held" : ""}`;
      if (phase === "connected" && lastCall !== current.call_id) {
        lastCall = current.call_id;
        renderWrapUp();
      }
      if (key !== popFor) {
        popFor = key;
        await showPop(current.call_id, phase, row.call);
      }
    } else if (popFor !== null) {
      popFor = null;
      popBox.hidden = true;
      popBox.replaceChildren();
    }
  });

  function tick() {
    for (const node of view.querySelectorAll("[data-since]")) {
      if (node.dataset.since) node.textContent = duration(now() - Number(node.dataset.since));
    }
    for (const node of view.querySelectorAll(".ticking")) {
      if (node.dataset.base !== "") node.textContent = duration(Number(node.dataset.base) + now() - Number(node.dataset.at));
    }
  }

  const unsubscribe = live.subscribe(["agent.*", "offer.*", "bridge.*", "call.*", "wrapup.*", "queue.left"], refresh);
  const ticker = setInterval(tick, 1000);   // the local clock only
  refresh();
  return () => {
    unsubscribe();
    clearInterval(ticker);
  };
}
