// The login form: POST /api/login; the answer carries the CSRF token.

import {post} from "./api.js";
import {el} from "./dom.js";

export function mount(view, params, {done}) {
  const user = el("input", {id: "username", name: "username", autocomplete: "username", required: true});
  const password = el("input", {id: "password", name: "password", type: "password",
                                autocomplete: "current-password", required: true});
  const error = el("p", {id: "login-error", class: "msg error", role: "alert", hidden: true});
  const button = el("button", {type: "submit", id: "login-submit"}, "Log in");
  const form = el("form", {class: "login", id: "login-form"},
    el("h1", {}, "sipacd console"),
    el("label", {for: "username"}, "User name"), user,
    el("label", {for: "password"}, "Password"), password,
    button, error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    button.disabled = true;
    try {
      done(await post("/api/login", {username: user.value, password: password.value}));
    } catch (e) {
      error.hidden = false;
      error.textContent = e.status === 401 ? "Wrong user name or password."
        : e.status === 429 ? `Too many failed attempts: locked${e.retryAfter ? ` for ${e.retryAfter} s` : ""}.`
        : `Login failed: ${e.message}`;
      password.value = "";
      password.focus();
    } finally {
      button.disabled = false;
    }
  });
  view.replaceChildren(form);
  user.focus();
  return () => {};
}
