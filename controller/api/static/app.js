// Headroom dashboard: plain JS, no build step, no network beyond this server.
"use strict";

const API = "/api/v1";
const WINDOW_S = 120; // seconds of history in the chart
const COLOURS = ["#c0392b", "#2e6fd9", "#2e8540"];
const state = { site: null, history: [], scope: { charger: null, connector: null }, seq: 0, etag: null };

function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem("headroom-token", hash.get("token"));
    history.replaceState(null, "", location.pathname);
  }
  let t = sessionStorage.getItem("headroom-token");
  if (!t) {
    t = prompt("Headroom API token") || "";
    sessionStorage.setItem("headroom-token", t);
  }
  return t;
}

const TOKEN = token();
const headers = (extra) => Object.assign({ Authorization: `Bearer ${TOKEN}` }, extra || {});

async function api(path, options) {
  const response = await fetch(API + path, Object.assign({}, options, { headers: headers(options && options.headers) }));
  if (response.status === 401) { sessionStorage.removeItem("headroom-token"); }
  return response;
}

function text(tag, content, cls) {
  const el = document.createElement(tag);
  el.textContent = content;
  if (cls) el.className = cls;
  return el;
}

function fmt(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1); }

function drawChart() {
  const canvas = document.getElementById("chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 30;
  ctx.clearRect(0, 0, w, h);
  const now = Date.now() / 1000;
  const points = state.history.filter((p) => now - p.t <= WINDOW_S);
  const top = Math.max(10, ...points.map((p) => Math.max(p.limit || 0, ...p.a.map((v) => v || 0)))) * 1.1;
  const x = (t) => pad + ((t - (now - WINDOW_S)) / WINDOW_S) * (w - pad - 5);
  const y = (v) => h - pad - (v / top) * (h - 2 * pad);
  ctx.strokeStyle = "#ccd"; ctx.fillStyle = "#556"; ctx.font = "11px sans-serif";
  for (let v = 0; v <= top; v += Math.max(5, Math.round(top / 50) * 10)) {
    ctx.beginPath(); ctx.moveTo(pad, y(v)); ctx.lineTo(w - 5, y(v)); ctx.stroke();
    ctx.fillText(String(v), 2, y(v) + 4);
  }
  const line = (values, colour, dash) => {
    ctx.strokeStyle = colour; ctx.setLineDash(dash || []); ctx.lineWidth = 2; ctx.beginPath();
    let started = false;
    points.forEach((p, i) => {
      const v = values(p);
      if (v === null || v === undefined) { started = false; return; }
      if (started) ctx.lineTo(x(p.t), y(v)); else { ctx.moveTo(x(p.t), y(v)); started = true; }
    });
    ctx.stroke(); ctx.setLineDash([]);
  };
  line((p) => p.limit, "#000", [6, 4]);
  [0, 1, 2].forEach((i) => line((p) => p.a[i], COLOURS[i]));
  ctx.fillStyle = "#000"; ctx.fillText("limit − margin", w - 90, 12);
  ["L1", "L2", "L3"].forEach((n, i) => { ctx.fillStyle = COLOURS[i]; ctx.fillText(n, w - 150 + i * 20, 12); });
}

function renderSite(site) {
  document.getElementById("site-id").textContent = site.id;
  const mode = document.getElementById("mode");
  mode.textContent = site.mode + (site.mode_reason ? `: ${site.mode_reason}` : "");
  mode.className = `badge ${site.mode}`;
  const lim = site.limits;
  const bound = lim.max_current_a === null ? null : lim.max_current_a - lim.safety_margin_a;
  state.history.push({ t: Date.now() / 1000, a: site.meter.current_a, limit: bound });
  document.getElementById("numbers").textContent =
    `meter ${site.meter.current_a.map(fmt).join(" / ")} A · limit ${fmt(lim.max_current_a)} A ` +
    `(rating ${fmt(lim.rated_max_current_a)} A) · headroom ${site.headroom_a.map(fmt).join(" / ")} A · ` +
    `allocated ${fmt(site.allocated_a)} A` +
    (lim.active_schedules.length ? ` · schedules: ${lim.active_schedules.join(", ")}` : "");
  const input = document.getElementById("limit-a");
  if (document.activeElement !== input && !input.value) input.placeholder = fmt(lim.max_current_a);
  input.max = lim.rated_max_current_a || "";
}

function scopeTo(charger, connector) {
  state.scope = { charger, connector };
  state.seq = 0;
  document.getElementById("timeline").replaceChildren();
  document.getElementById("scope").textContent =
    charger ? `(${charger}${connector ? "/" + connector : ""})` : "(site)";
  loadTimeline();
}

function renderChargers(chargers) {
  const body = document.querySelector("#chargers tbody");
  const rows = [];
  chargers.forEach((c) => {
    const row = document.createElement("tr");
    row.className = "charger";
    row.dataset.charger = c.id;
    const name = text("td", c.id + (c.connected ? "" : " (offline)"), c.connected ? "" : "offline");
    name.onclick = () => scopeTo(c.id, null);
    row.append(name, text("td", ""), text("td", ""), text("td", ""), text("td", ""));
    const prio = document.createElement("td");
    const input = document.createElement("input");
    input.type = "number"; input.min = "0.1"; input.max = "100"; input.step = "0.5";
    input.value = c.priority; input.className = "priority"; input.dataset.charger = c.id;
    prio.append(input);
    const set = document.createElement("td");
    const button = text("button", "Set priority");
    button.type = "button";
    button.onclick = () => setPriority(c.id, Number(input.value));
    set.append(button);
    row.append(prio, set);
    rows.push(row);
    c.connectors.forEach((k) => {
      const r = document.createElement("tr");
      r.className = "connector";
      r.dataset.connector = `${c.id}/${k.id}`;
      const n = text("td", `  ${c.id}/${k.id}`);
      n.style.cursor = "pointer";
      n.onclick = () => scopeTo(c.id, k.id);
      r.append(n, text("td", k.status, `st-${k.status}`), text("td", fmt(k.setpoint_a), "setpoint"),
        text("td", k.measured_a.map(fmt).join(" "), "draw"), text("td", k.binding || ""), text("td", ""), text("td", ""));
      rows.push(r);
    });
  });
  const focused = document.activeElement;
  if (focused && focused.classList.contains("priority")) return; // do not redraw under the user
  body.replaceChildren(...rows);
}

async function loadTimeline() {
  const q = new URLSearchParams({ after: state.seq, limit: 200 });
  if (state.scope.charger) q.set("charger_id", state.scope.charger);
  if (state.scope.connector) q.set("connector_id", state.scope.connector);
  const response = await api(`/sites/${state.site}/timeline?${q}`);
  if (!response.ok) return;
  const list = document.getElementById("timeline");
  (await response.json()).forEach((e) => {
    state.seq = Math.max(state.seq, e.seq);
    const li = text("li", `${e.at.slice(11, 19)} ${e.kind} `);
    if (e.charger_id) {
      const a = text("a", e.charger_id + (e.connector_id ? "/" + e.connector_id : ""));
      a.onclick = () => scopeTo(e.charger_id, e.connector_id);
      li.append(a, " ");
    }
    li.append(e.summary);
    list.prepend(li);
  });
  while (list.children.length > 300) list.lastChild.remove();
}

function message(msg, error) {
  const el = document.getElementById("form-msg");
  el.textContent = msg;
  el.className = error ? "error" : "";
}

async function put(path, body) {
  const settings = await api(`/sites/${state.site}/settings`);
  const etag = settings.headers.get("ETag");
  const response = await api(`/sites/${state.site}${path}`, {
    method: "PUT", body: JSON.stringify(body),
    headers: Object.assign({ "Content-Type": "application/json" }, etag ? { "If-Match": etag } : {}),
  });
  if (response.ok) { message("saved: applies from the next decision"); return true; }
  const problem = await response.json().catch(() => ({}));
  const why = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ") || problem.detail || problem.title;
  message(`refused (${response.status}): ${why}`, true);
  return false;
}

async function setLimit(value) {
  const current = await (await api(`/sites/${state.site}/settings`)).json();
  await put("/settings/limit", Object.assign({}, current.site, { max_current_a: value }));
}

async function setPriority(charger, priority) {
  await put(`/settings/chargers/${encodeURIComponent(charger)}`, { priority });
}

async function stream() {
  for (;;) {
    try {
      const response = await fetch(`${API}/sites/${state.site}/stream`, { headers: headers() });
      if (!response.ok) throw new Error(`stream: ${response.status}`);
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("");
          if (!data) continue;
          const parsed = JSON.parse(data);
          renderSite(parsed.site);
          renderChargers(parsed.chargers);
          drawChart();
          if (parsed.timeline_seq > state.seq) loadTimeline();
        }
      }
    } catch (err) {
      document.getElementById("mode").textContent = `disconnected (${err.message}); retrying`;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

async function main() {
  const me = await api("/me");
  if (!me.ok) { document.getElementById("mode").textContent = "no access: reload and enter a valid token"; return; }
  const who = await me.json();
  document.getElementById("who").textContent = `${who.name} (${who.role})`;
  const sites = await (await api("/sites")).json();
  const wanted = new URLSearchParams(location.search).get("site");
  state.site = (sites.find((s) => s.id === wanted) || sites[0]).id;
  document.getElementById("limit-form").onsubmit = (e) => {
    e.preventDefault();
    const v = Number(document.getElementById("limit-a").value);
    if (v > 0) setLimit(v);
  };
  document.getElementById("limit-clear").onclick = () => setLimit(null);
  document.getElementById("scope-site").onclick = () => scopeTo(null, null);
  loadTimeline();
  stream();
}

main();
