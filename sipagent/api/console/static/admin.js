// Admin: the agents (add, edit, remove; changes apply at once in the
// engine), the console's users, and the audit log of who changed what.

import {del, enc, get, optional, post, put} from "./api.js";
import {compact, dateTime, el} from "./dom.js";
import * as live from "./live.js";

// "support:0, sales:5" <-> {"support": 0, "sales": 5}; a name alone has 0.
export function parsePairs(text, what) {
  const out = {};
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const [name, value = "0"] = part.split(":").map((s) => s.trim());
    if (!name || !/^-?\d+$/.test(value)) throw new Error(`${what}: "${part}" is not name or name:number`);
    out[name] = Number(value);
  }
  return out;
}

function pairs(obj) {
  if (Array.isArray(obj)) return obj.join(", ");
  return Object.entries(obj || {}).map(([k, v]) => `${k}:${v}`).join(", ");
}

function input(id, attrs = {}) {
  return el("input", {id, name: id, ...attrs});
}

function field(labelText, node, hint) {
  return el("label", {class: "field"}, el("span", {}, labelText), node,
            hint ? el("small", {}, hint) : null);
}

function confirmButton(text, action) {
  // Two clicks: the first arms the button (no dialog box to dismiss).
  const button = el("button", {type: "button", class: "danger"}, text);
  let armed = false;
  button.addEventListener("click", () => {
    if (!armed) {
      armed = true;
      button.textContent = `Really ${text.toLowerCase()}?`;
      setTimeout(() => { armed = false; button.textContent = text; }, 4000);
      return;
    }
    action();
  });
  return button;
}

export function mount(view, params, {say}) {
  const agentList = el("div", {id: "admin-agents"});
  const userList = el("div", {id: "admin-users"});
  const audit = el("div", {id: "admin-audit"});

  // -- the agent form: empty to add, filled to edit ----------------------------
  const f = {
    agent: input("agent-id", {required: true, pattern: "[A-Za-z0-9_.\\-]+", maxlength: 64}),
    name: input("agent-name", {maxlength: 80}),
    uri: input("agent-uri", {required: true, placeholder: "sip:alice@pbx.example"}),
    queues: input("agent-queues", {placeholder: "support:0, sales:5"}),
    skills: input("agent-skills", {placeholder: "english:3"}),
    wrap_up: input("agent-wrap-up", {type: "number", min: 0, max: 3600, placeholder: "queue default"}),
    pin: input("agent-pin", {type: "password", autocomplete: "new-password", inputmode: "numeric"}),
    password: input("agent-password", {type: "password", autocomplete: "new-password", minlength: 8}),
    role: el("select", {id: "agent-role"}, ["agent", "supervisor", "admin"].map((r) => el("option", {value: r}, r))),
  };
  let editing = null;
  const formTitle = el("h3", {}, "Add an agent");
  const cancel = el("button", {type: "button", hidden: true}, "Cancel");
  const agentForm = el("form", {id: "agent-form", class: "grid-form"}, formTitle,
    field("Agent id", f.agent), field("Name", f.name), field("Phone URI", f.uri),
    field("Queues", f.queues, "queue:penalty, …"), field("Skills", f.skills, "skill:level, …"),
    field("Wrap-up (s)", f.wrap_up), field("PIN", f.pin, "keypad login; empty keeps it"),
    field("Password", f.password, "console login; empty keeps it"), field("Login role", f.role),
    el("div", {class: "buttons"}, el("button", {type: "submit", id: "agent-save"}, "Save"), cancel));

  function fill(row) {
    editing = row ? row.agent : null;
    formTitle.textContent = row ? `Edit agent ${row.agent}` : "Add an agent";
    f.agent.value = row?.agent ?? "";
    f.agent.disabled = Boolean(row);
    f.name.value = row?.name ?? "";
    f.uri.value = row?.uri ?? "";
    f.queues.value = pairs(row?.queues);
    f.skills.value = pairs(row?.skills);
    f.wrap_up.value = row?.wrap_up ?? "";
    f.pin.value = "";
    f.password.value = "";
    f.role.value = (row && logins[row.agent]?.role) || "agent";
    cancel.hidden = !row;
  }
  cancel.addEventListener("click", () => fill(null));

  agentForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    let body;
    try {
      body = {agent: f.agent.value.trim(), uri: f.uri.value.trim(),
              queues: parsePairs(f.queues.value, "queues"), skills: parsePairs(f.skills.value, "skills")};
    } catch (e) {
      say(e.message, "error");
      return;
    }
    if (f.name.value.trim()) body.name = f.name.value.trim();
    else if (editing) body.name = null;
    if (f.wrap_up.value !== "") body.wrap_up = Number(f.wrap_up.value);
    else if (editing) body.wrap_up = null;
    // The login role matters with a password (a login named after the agent).
    if (f.password.value || logins[body.agent]) body.role = f.role.value;
    if (f.pin.value) body.pin = f.pin.value;
    if (f.password.value) body.password = f.password.value;
    try {
      if (editing) await put(`/api/admin/agents/${enc(editing)}`, body);
      else await post("/api/admin/agents", body);
      say(`Agent ${body.agent} saved.`);
      fill(null);
      refresh();
    } catch (e) {
      if (e.status !== 401) say(`Saving agent ${body.agent}: ${e.message}`, "error");
    }
  });

  async function removeAgent(id) {
    try {
      await del(`/api/admin/agents/${enc(id)}`);
      say(`Agent ${id} removed.`);
      if (editing === id) fill(null);
      refresh();
    } catch (e) {
      if (e.status !== 401) say(`Removing agent ${id}: ${e.message}`, "error");
    }
  }

  // -- users who are not agents (supervisors, admins) ---------------------------
  const u = {
    user: input("user-name", {required: true, maxlength: 64, autocomplete: "off"}),
    password: input("user-password", {type: "password", autocomplete: "new-password", minlength: 8}),
    role: el("select", {id: "user-role"}, ["supervisor", "admin"].map((r) => el("option", {value: r}, r))),
    queues: input("user-queues", {placeholder: "all queues"}),
  };
  const userForm = el("form", {id: "user-form", class: "grid-form"}, el("h3", {}, "Add or change a user"),
    field("User name", u.user), field("Password", u.password, "empty keeps it"), field("Role", u.role),
    field("Queues", u.queues, "a supervisor's queues, comma-separated; empty: all"),
    el("div", {class: "buttons"}, el("button", {type: "submit", id: "user-save"}, "Save")));
  let users = [];
  let logins = {};        // agent id -> its console login (a user row)
  userForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = u.user.value.trim();
    const queues = u.queues.value.split(",").map((s) => s.trim()).filter(Boolean);
    const body = {user: name, role: u.role.value, queues: queues.length ? queues : null};
    if (u.password.value) body.password = u.password.value;
    try {
      if (users.some((x) => (x.user ?? x.username) === name)) await put(`/api/admin/users/${enc(name)}`, body);
      else await post("/api/admin/users", body);
      say(`User ${name} saved.`);
      userForm.reset();
      refresh();
    } catch (e) {
      if (e.status !== 401) say(`Saving user ${name}: ${e.message}`, "error");
    }
  });

  async function removeUser(name) {
    try {
      await del(`/api/admin/users/${enc(name)}`);
      say(`User ${name} removed.`);
      refresh();
    } catch (e) {
      if (e.status !== 401) say(`Removing user ${name}: ${e.message}`, "error");
    }
  }

  view.replaceChildren(el("h1", {}, "Admin"),
    el("section", {class: "panel"}, el("h2", {}, "Agents"), agentList, agentForm),
    el("section", {class: "panel"}, el("h2", {}, "Users"), userList, userForm),
    el("section", {class: "panel"}, el("h2", {}, "Audit log"), audit));

  function renderAgents(rows) {
    const head = ["Agent", "Name", "Phone", "Queues", "Skills", "Login", ""];
    agentList.replaceChildren(el("table", {class: "admin-agents"},
      el("thead", {}, el("tr", {}, head.map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows.map((row) => el("tr", {dataset: {agent: row.agent}},
        el("td", {}, el("strong", {}, row.agent)), el("td", {}, row.name || "–"),
        el("td", {class: "mono"}, row.uri || "–"), el("td", {}, pairs(row.queues) || "–"),
        el("td", {}, pairs(row.skills) || "–"),
        el("td", {}, logins[row.agent] ? logins[row.agent].role : "no login"),
        el("td", {}, el("div", {class: "actions"},
          el("button", {type: "button", class: "edit", onclick: () => fill(row)}, "Edit"),
          confirmButton("Remove", () => removeAgent(row.agent)))))))));
  }

  function renderUsers(rows) {
    users = rows;
    logins = Object.fromEntries(rows.filter((u) => u.agent).map((u) => [u.agent, u]));
    userList.replaceChildren(rows.length ? el("table", {class: "admin-users"},
      el("thead", {}, el("tr", {}, ["User", "Role", "Agent", "Queues", ""].map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows.map((row) => {
        const name = row.user ?? row.username;
        return el("tr", {dataset: {user: name}},
          el("td", {}, name), el("td", {}, row.role), el("td", {}, row.agent || "–"),
          el("td", {}, row.role !== "supervisor" ? "–" : row.queues ? pairs(row.queues) : "all"),
          el("td", {}, row.agent ? "" : confirmButton("Remove", () => removeUser(name))));
      }))) : el("p", {class: "msg"}, "No users besides the agents."));
  }

  function renderAudit(rows) {
    audit.replaceChildren(rows.length ? el("table", {class: "audit"},
      el("thead", {}, el("tr", {}, ["When", "Who", "What", "Before", "After"].map((h) => el("th", {scope: "col"}, h)))),
      el("tbody", {}, rows.map((row) => el("tr", {},
        el("td", {}, typeof row.t === "number" ? dateTime(row.t) : compact(row.t ?? row.time)),
        el("td", {}, compact(row.who)), el("td", {}, `${row.action ?? ""} ${row.target ?? ""}`.trim() || "–"),
        el("td", {class: "mono small"}, compact(row.before)),
        el("td", {class: "mono small"}, compact(row.after))))))
      : el("p", {class: "msg"}, "Nothing changed yet."));
  }

  const refresh = live.singleFlight(async () => {
    try {
      const [agents, userAnswer, auditAnswer] = await Promise.all([
        get("/api/admin/agents"), optional("/api/admin/users"), optional("/api/admin/audit")]);
      renderUsers(userAnswer ? (userAnswer.users || []) : []);
      renderAgents(agents.agents || []);
      renderAudit(auditAnswer ? (auditAnswer.audit || []) : []);
    } catch (e) {
      if (e.status !== 401) say(`Admin: ${e.message}`, "error");
    }
  });
  const unsubscribe = live.subscribe(["agent.added", "agent.updated", "agent.removed"], refresh);
  fill(null);
  refresh();
  return unsubscribe;
}
