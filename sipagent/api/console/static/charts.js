// Charts as SVG built with DOM calls (no library, nothing inline to trip
// the Content-Security-Policy): ratios per interval as lines.

import {el, svg} from "./dom.js";

const WIDTH = 720, HEIGHT = 220;
const PAD = {left: 44, right: 12, top: 12, bottom: 28};

// series: [{name, values: [ratio|null...]}], labels: [text per point].
// A missing value breaks the line rather than drawing it as zero.
export function ratioChart({title, labels, series, id}) {
  const plotW = WIDTH - PAD.left - PAD.right, plotH = HEIGHT - PAD.top - PAD.bottom;
  const n = Math.max(labels.length, 1);
  const x = (i) => PAD.left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));
  const y = (v) => PAD.top + plotH * (1 - Math.min(Math.max(v, 0), 1));
  const grid = [0, 0.25, 0.5, 0.75, 1].map((v) => svg("g", {class: "grid"},
    svg("line", {x1: PAD.left, x2: WIDTH - PAD.right, y1: y(v), y2: y(v)}),
    svg("text", {x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end"}, `${v * 100}%`)));
  const every = Math.max(1, Math.ceil(n / 8));
  const ticks = labels.map((label, i) => (i % every ? null
    : svg("text", {x: x(i), y: HEIGHT - 8, "text-anchor": "middle", class: "tick"}, label)));
  const lines = series.map((s, k) => {
    let d = "";
    let pen = false;
    s.values.forEach((v, i) => {
      if (v === null || v === undefined || !Number.isFinite(v)) {
        pen = false;
        return;
      }
      d += `${pen ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
      pen = true;
    });
    const dots = s.values.map((v, i) => (Number.isFinite(v)
      ? svg("circle", {cx: x(i), cy: y(v), r: 2.5, class: `dot series-${k}`},
            svg("title", {}, `${s.name} ${labels[i]}: ${(v * 100).toFixed(1)}%`)) : null));
    return svg("g", {}, svg("path", {d: d.trim() || "M0,0", class: `line series-${k}`}), dots);
  });
  const chart = svg("svg", {viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img",
                            "aria-label": title, id},
    svg("title", {}, title), grid, ticks, lines);
  const legend = el("ul", {class: "legend"},
    series.map((s, k) => el("li", {class: `series-${k}`}, s.name)));
  return el("figure", {class: "chart-box"}, el("figcaption", {}, title), chart, legend);
}
