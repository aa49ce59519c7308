// Redraws the page from /tree.json and /graph.svg every second. Text is
// always set as text (never parsed as HTML), and the graph is parsed as
// SVG before it replaces the old one.
"use strict";

const POLL_MS = 1000;

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A compact "how long ago" for an RFC 3339 time.
function ago(rfc3339) {
  const seconds = Math.round((Date.now() - Date.parse(rfc3339)) / 1000);
  if (!isFinite(seconds)) return rfc3339;
  if (seconds < 60) return `${Math.max(seconds, 0)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  return `${Math.floor(seconds / 3600)}h ago`;
}

function facts(node) {
  const out = [];
  const n = node["start-count"];
  if (n !== undefined) out.push(n === 1 ? "1 start" : `${n} starts`);
  const attempts = node["start-attempts"];
  if (attempts) out.push(`${attempts} ${attempts === 1 ? "try" : "tries"} since`);
  if (node.restarts) out.push(`restart #${node.restarts}`);
  if (node.started) out.push(`last started ${ago(node.started)}`);
  return out;
}

function renderNode(node) {
  const item = el("li", `node kind-${node.kind}`);
  const row = el("div", "row");
  row.append(el("span", "kind", node.kind));
  row.append(el("span", "name", node.name));
  if (node.state) {
    row.append(el("span", `state health-${node.health}`, node.state));
  }
  for (const fact of facts(node)) row.append(el("span", "fact", fact));
  item.append(row);
  // An error is news only while it keeps the node down; otherwise it is
  // history (or, for a missing input, no failure at all).
  if (node.error) {
    const down = node.health === "failed" || node.health === "stuck";
    const past = node.health === "waiting" ? "" : "last error: ";
    item.append(el("div", down ? "error" : "error past", down ? node.error : past + node.error));
  }
  if (node.why) item.append(el("div", "why", `why: ${node.why}`));
  for (const note of node.notes || []) item.append(el("div", "note", note));
  if (node.detail !== undefined) {
    item.append(el("pre", "detail", JSON.stringify(node.detail, null, 2)));
  }
  if (node.children && node.children.length) {
    const list = el("ul", "children");
    for (const child of node.children) list.append(renderNode(child));
    item.append(list);
  }
  return item;
}

function showTree(root) {
  document.getElementById("engine-name").textContent = `engine "${root.name}" (${root.state})`;
  document.getElementById("tree").replaceChildren(renderNode(root));
}

function showGraph(text) {
  const parsed = new DOMParser().parseFromString(text, "image/svg+xml");
  const svg = parsed.documentElement;
  if (svg.nodeName !== "svg") throw new Error("/graph.svg is not an SVG");
  document.getElementById("graph").replaceChildren(document.importNode(svg, true));
}

async function fetchOk(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: ${response.status} ${await response.text()}`);
  return response;
}

async function refresh() {
  const status = document.getElementById("status");
  try {
    const [tree, svg] = await Promise.all([
      fetchOk("/tree.json").then((r) => r.json()),
      fetchOk("/graph.svg").then((r) => r.text()),
    ]);
    showTree(tree);
    showGraph(svg);
    status.textContent = `live \u00b7 updated ${new Date().toLocaleTimeString()}`;
    status.className = "status live";
  } catch (e) {
    status.textContent = `not updating: ${e.message}`;
    status.className = "status down";
  } finally {
    setTimeout(refresh, POLL_MS);
  }
}

refresh();
