// The JSON API as the pages use it.  The session cookie (HttpOnly) goes with
// every request by itself; the CSRF token is ours to send on every request
// that changes something.  It lives in memory and in sessionStorage (a
// reload of the tab keeps it, another tab or site never sees it).
// A 401 from anywhere means the session is gone: back to the login page.

const CSRF_KEY = "sipacd.csrf";
const SAFE = new Set(["GET", "HEAD"]);

export const session = {user: null, role: null, agent: null, queues: null};
let csrf = sessionStorage.getItem(CSRF_KEY);
let unauthorized = () => {};

export class ApiError extends Error {
  constructor(status, text, retryAfter) {
    super(text || `HTTP ${status}`);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

export function onUnauthorized(handler) {
  unauthorized = handler;
}

export function setSession(answer) {
  Object.assign(session, {user: answer.user, role: answer.role, agent: answer.agent ?? null,
                          queues: answer.queues ?? null});
  csrf = answer.csrf ?? csrf;
  if (csrf) sessionStorage.setItem(CSRF_KEY, csrf);
}

export function clearSession() {
  Object.assign(session, {user: null, role: null, agent: null, queues: null});
  csrf = null;
  sessionStorage.removeItem(CSRF_KEY);
}

export async function api(method, path, body) {
  const headers = {Accept: "application/json"};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method) && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) {
    if (response.status === 401 && path !== "/api/login" && path !== "/api/session") {
      clearSession();
      unauthorized();
    }
    throw new ApiError(response.status, text.trim(), response.headers.get("Retry-After"));
  }
  if (!text) return null;
  return JSON.parse(text);
}

export const get = (path) => api("GET", path);
export const post = (path, body = {}) => api("POST", path, body);
export const put = (path, body) => api("PUT", path, body);
export const del = (path) => api("DELETE", path);

// A GET that may not exist on this engine (an optional part): null on 404.
export async function optional(path) {
  try {
    return await get(path);
  } catch (e) {
    if (e.status === 404 || e.status === 405) return null;
    throw e;
  }
}

// "/api/x?a=1&b=2" from a path and an object (empty values left out).
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export const enc = encodeURIComponent;
