// The console's shell: who is logged in, the hash routes, the navigation.
// Each page is a module with mount(view, params) returning its cleanup.

import {ApiError, clearSession, get, onUnauthorized, post, session, setSession} from "./api.js";
import {el} from "./dom.js";
import * as live from "./live.js";
import * as login from "./login.js";
import * as wallboard from "./wallboard.js";
import * as agents from "./agents.js";
import * as calls from "./calls.js";
import * as reports from "./reports.js";
import * as admin from "./admin.js";
import * as desktop from "./desktop.js";

const STAFF = ["admin", "supervisor"];
const PAGES = {
  wallboard: {title: "Wallboard", page: wallboard, roles: STAFF},
  agents: {title: "Agents", page: agents, roles: STAFF},
  calls: {title: "Calls", page: calls, roles: STAFF},
  reports: {title: "Reports", page: reports, roles: STAFF},
  admin: {title: "Admin", page: admin, roles: ["admin"]},
  desktop: {title: "Desktop", page: desktop, roles: ["agent"]},
};

const view = document.getElementById("view");
const top = document.getElementById("top");
const status = document.getElementById("status");
let cleanup = null;
let routing = 0;          // the latest route(); an older one that wakes up stops

function home() {
  return session.role === "agent" ? "desktop" : "wallboard";
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, "");
  const [name, query] = raw.split("?");
  return {name: name || "", params: new URLSearchParams(query || "")};
}

export function go(name, params = "") {
  const hash = `#/${name}${params ? `?${params}` : ""}`;
  if (location.hash === hash) route();
  else location.hash = hash;
}

function nav(current) {
  const links = Object.entries(PAGES)
    .filter(([, p]) => p.roles.includes(session.role))
    .map(([name, p]) => el("a", {href: `#/${name}`, class: name === current ? "current" : "",
                                 "aria-current": name === current ? "page" : false}, p.title));
  document.getElementById("nav").replaceChildren(...links);
  const who = session.agent && session.agent !== session.user
    ? `${session.user} (${session.role}, agent ${session.agent})` : `${session.user} (${session.role})`;
  document.getElementById("who").textContent = who;
}

async function knownSession() {
  if (session.role) return true;
  try {
    setSession(await get("/api/session"));
    return true;
  } catch (e) {
    // 401: nobody is logged in (404: an engine without logins at all).
    if (e instanceof ApiError && (e.status === 401 || e.status === 404)) return false;
    throw e;
  }
}

async function route() {
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  status.textContent = "";
  document.body.classList.remove("big");
  const {name, params} = parseHash();
  const mine = ++routing;
  let loggedIn = false;
  try {
    loggedIn = await knownSession();
  } catch (e) {
    if (mine === routing) {
      view.replaceChildren(el("p", {class: "msg error", role: "alert"},
                              `The engine did not answer: ${e.message}`));
    }
    return;
  }
  if (mine !== routing) return;       // the hash changed meanwhile: that route mounts
  if (!loggedIn) {
    live.stop();
    top.hidden = true;
    document.title = "Log in · sipacd";
    cleanup = login.mount(view, params, {
      done: (answer) => {
        setSession(answer);
        go(home());
      },
    });
    if (name !== "login") history.replaceState(null, "", "#/login");
    return;
  }
  const entry = PAGES[name];
  if (!entry || !entry.roles.includes(session.role)) {
    go(home());
    return;
  }
  top.hidden = false;
  nav(name);
  document.title = `${entry.title} · sipacd`;
  live.start(document.getElementById("live"), checkSession);
  view.replaceChildren();
  cleanup = entry.page.mount(view, params, {go, session, say});
}

// A short note for the user at the bottom of the page (errors, "saved").
export function say(text, kind = "info") {
  status.textContent = text;
  status.className = `status ${kind}`;
}

async function checkSession() {
  try {
    await get("/api/session");
  } catch (e) {
    if (e.status === 401) go("login");
  }
}

async function logout() {
  try {
    await post("/api/logout");
  } catch (e) {
    if (e.status !== 401) say(`Logout failed: ${e.message}`, "error");
  }
  clearSession();
  live.stop();
  go("login");
}

onUnauthorized(() => {
  live.stop();
  go("login");
});
document.getElementById("logout").addEventListener("click", logout);
window.addEventListener("hashchange", route);
route();
