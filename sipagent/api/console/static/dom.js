// Building the page: every piece of data goes in as a text node or an
// attribute value, never as markup (the console never parses a string as HTML).

const SVG_NS = "http://www.w3.org/2000/svg";

function fill(node, attrs, children) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else if (key === "class") node.setAttribute("class", value);
    else if (key.startsWith("on") && typeof value === "function") {
      node.addEventListener(key.slice(2), value);
    } else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key in node && typeof value !== "string" && !(node instanceof SVGElement)) {
      node[key] = value;   // properties such as .value, .checked, .disabled
    } else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// el("td", {class: "num"}, "12") -> <td class="num">12</td>
export function el(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

export function svg(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

// "1:05", "2:03:07"; "–" for nothing.
export function duration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "–";
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? `${h}:` : "") + `${mm}:${String(r).padStart(2, "0")}`;
}

export function percent(ratio) {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return "–";
  return `${(ratio * 100).toFixed(1)} %`;
}

export function number(value, digits = 0) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "–";
  return value.toFixed(digits);
}

export function clock(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toLocaleTimeString([], {hour: "2-digit", minute: "2-digit"});
}

export function dateTime(epoch) {
  if (!epoch) return "–";
  return new Date(epoch * 1000).toLocaleString();
}

// A table from rows: columns = [[heading, row => value or Node, class?]...].
export function table(columns, rows, attrs = {}) {
  const head = el("tr", {}, columns.map(([heading, , cls]) => el("th", {class: cls, scope: "col"}, heading)));
  const body = rows.map((row) => el("tr", {},
    columns.map(([, cell, cls]) => {
      const value = cell(row);
      return el("td", {class: cls}, value === undefined || value === null ? "–" : value);
    })));
  return el("table", attrs, el("thead", {}, head), el("tbody", {}, body));
}

export function section(title, ...children) {
  return el("section", {class: "panel"}, el("h2", {text: title}), ...children);
}

export function message(kind, text) {
  return el("p", {class: `msg ${kind}`, role: kind === "error" ? "alert" : "status", text});
}

// A one-line summary of an object, for audit rows and flow data.
export function compact(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "object") return String(value);
  return JSON.stringify(value);
}

export function now() {
  return Date.now() / 1000;
}
