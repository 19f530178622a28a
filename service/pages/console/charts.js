/* Bar charts drawn as SVG by this small module (no chart library): a labelled bar per
 * item, the value written beside it, so the figures can be read without the bars.
 */

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, String(value));
  if (text !== undefined) element.textContent = text;
  return element;
}

/**
 * Vertical bars (e.g. months): items [{label, value}], format(value) → text.
 * The picture is described by `title` and a <desc> listing every value.
 */
export function columnChart(items, options) {
  const width = 720;
  const height = 260;
  const top = 24;
  const bottom = 40;
  const left = 8;
  const max = Math.max(1, ...items.map((item) => Math.abs(item.value)));
  const slot = (width - left * 2) / Math.max(1, items.length);
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": options.title });
  root.append(svg("title", {}, options.title));
  root.append(svg("desc", {}, items.map((item) => item.label + ": " + options.format(item.value)).join("; ")));
  const plot = height - top - bottom;
  root.append(svg("line", { x1: left, x2: width - left, y1: top + plot, y2: top + plot, class: "axis" }));
  items.forEach((item, index) => {
    const barHeight = Math.round((Math.max(0, item.value) / max) * plot);
    const x = left + index * slot + slot * 0.15;
    const group = svg("g", { class: "bar" });
    group.append(svg("rect", { x: x, y: top + plot - barHeight, width: slot * 0.7, height: barHeight, rx: 2 }));
    group.append(svg("text", { x: x + slot * 0.35, y: top + plot - barHeight - 6, class: "value" }, item.short !== undefined ? item.short : options.format(item.value)));
    group.append(svg("text", { x: x + slot * 0.35, y: height - bottom + 18, class: "label" }, item.label));
    root.append(group);
  });
  return root;
}

/** Horizontal bars (e.g. categories, offers): one row each, label left, value right. */
export function barChart(items, options) {
  const width = 720;
  const row = 30;
  const labelWidth = 220;
  const valueWidth = 130;
  const height = Math.max(1, items.length) * row + 8;
  const max = Math.max(1, ...items.map((item) => Math.abs(item.value)));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart", "aria-label": options.title });
  root.append(svg("title", {}, options.title));
  root.append(svg("desc", {}, items.map((item) => item.label + ": " + options.format(item.value)).join("; ")));
  items.forEach((item, index) => {
    const y = 4 + index * row;
    const barWidth = Math.round((Math.max(0, item.value) / max) * (width - labelWidth - valueWidth - 16));
    const group = svg("g", { class: "bar" });
    group.append(svg("text", { x: labelWidth - 8, y: y + row / 2 + 5, class: "label end" }, item.label));
    group.append(svg("rect", { x: labelWidth, y: y + 5, width: barWidth, height: row - 10, rx: 2 }));
    group.append(svg("text", { x: labelWidth + barWidth + 8, y: y + row / 2 + 5, class: "value start" }, options.format(item.value)));
    root.append(group);
  });
  return root;
}
