// Headroom dashboard: plain JS, no build step, no network beyond this server.
"use strict";

const API = "/api/v1";
const WINDOW_S = 120; // seconds of history in the chart
const COLOURS = ["#c0392b", "#2e6fd9", "#2e8540"];
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const state = { site: null, history: [], scope: { charger: null, connector: null }, seq: 0, chargers: [], settings: null };

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
  state.groups = site.groups;
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
    const name = text("td", c.id + (c.group ? ` · ${c.group}` : "") + (c.connected ? "" : " (offline)"), c.connected ? "" : "offline");
    name.onclick = () => scopeTo(c.id, null);
    const capped = c.max_current_a < c.rated_max_current_a;
    row.append(name, text("td", ""), text("td", ""), text("td", ""), text("td", ""),
      text("td", fmt(c.priority), "priority"),
      text("td", capped ? `${fmt(c.max_current_a)} of ${fmt(c.rated_max_current_a)}` : fmt(c.rated_max_current_a), "cap"));
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
  body.replaceChildren(...rows);
  state.chargers = chargers;
  fillChoices(chargers);
}

function setOptions(select, values) {
  // Only when the choices changed, and never under the user's hand.
  const now = [...select.options].map((o) => [o.value, o.textContent]);
  if (document.activeElement === select || JSON.stringify(now) === JSON.stringify(values)) return;
  const keep = select.value;
  select.replaceChildren(...values.map(([value, label]) => { const o = text("option", label); o.value = value; return o; }));
  const same = values.some((v) => v[0] === keep);
  if (same) select.value = keep;
  if (!same) select.dispatchEvent(new Event("change"));
}

function fillChoices(chargers) {
  setOptions(document.getElementById("charger-id"), chargers.map((c) => [c.id, c.id]));
  const groups = (state.groups || []).map((g) => [g.id, `${g.id} (now ${fmt(g.max_current_a)} A, rated ${fmt(g.rated_max_current_a)} A)`]);
  setOptions(document.getElementById("group-id"), groups);
  document.getElementById("group-box").hidden = state.role === "viewer" || !groups.length; // no groups, no form
  const sessions = [];
  chargers.forEach((c) => c.connectors.forEach((k) => {
    if (!k.session) return;
    const needs = k.session.needs;
    const said = needs ? [needs.departure_at ? `leaves ${needs.departure_at.slice(11, 16)} UTC` : "",
      needs.energy_wh !== null ? `${fmt(needs.energy_wh / 1000)} kWh` : ""].filter(Boolean).join(", ") : "";
    sessions.push([`${c.id}/${k.id}`, `${c.id}/${k.id}` + (said ? ` (${said})` : "")]);
  }));
  setOptions(document.getElementById("needs-session"), sessions);
}

async function loadTimeline() {
  const q = new URLSearchParams({ after: state.seq, limit: 200 });
  if (state.scope.charger) q.set("charger_id", state.scope.charger);
  if (state.scope.connector) q.set("connector_id", state.scope.connector);
  const response = await api(`/sites/${state.site}/timeline?${q}`);
  if (!response.ok) return;
  const list = document.getElementById("timeline");
  let changed = false;
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
    if (e.kind === "OperatorChange") changed = true;
  });
  while (list.children.length > 300) list.lastChild.remove();
  if (changed) { loadSettings(); loadChanges(); } // another manager's change
}

function message(form, msg, error) {
  const el = form.querySelector(".msg");
  el.textContent = msg;
  el.className = error ? "msg error" : "msg";
}

async function problemText(response) {
  const problem = await response.json().catch(() => ({}));
  const why = (problem.errors || []).map((e) => `${e.field}: ${e.reason}`).join("; ") || problem.detail || problem.title;
  return `refused (${response.status}): ${why || response.statusText}`;
}

async function put(form, path, body, conditional = true) {
  // Settings writes carry the ETag they were based on: a change made meanwhile gets 412.
  const extra = { "Content-Type": "application/json" };
  if (conditional) {
    const current = await api(`/sites/${state.site}/settings`);
    if (current.headers.get("ETag")) extra["If-Match"] = current.headers.get("ETag");
  }
  const response = await api(`/sites/${state.site}${path}`, { method: "PUT", body: JSON.stringify(body), headers: extra });
  if (!response.ok) { message(form, await problemText(response), true); return false; }
  message(form, "saved: applies from the next decision");
  loadSettings();
  loadChanges();
  return true;
}

const num = (id) => { const v = document.getElementById(id).value; return v === "" ? null : Number(v); };

async function setLimit(value) {
  const current = await (await api(`/sites/${state.site}/settings`)).json();
  await put(document.getElementById("limit-form"), "/settings/limit", Object.assign({}, current.site, { max_current_a: value }));
}

function renderSchedules(settings) {
  const list = document.getElementById("schedules");
  document.getElementById("schedule-count").textContent = settings.schedules.length ? `(${settings.schedules.length})` : "";
  list.replaceChildren(...settings.schedules.map((e, i) => {
    const limits = [e.max_current_a !== null ? `${fmt(e.max_current_a)} A` : "", e.max_power_kw !== null ? `${fmt(e.max_power_kw)} kW` : ""];
    const li = text("li", `${e.name || "(unnamed)"}: ${e.days.length ? e.days.join(" ") : "every day"} ${e.start}–${e.end} ≤ ${limits.filter(Boolean).join(", ")} `);
    const remove = text("button", "remove");
    remove.type = "button";
    remove.onclick = () => put(document.getElementById("schedule-form"), "/settings/schedules", settings.schedules.filter((_, j) => j !== i));
    li.append(remove);
    return li;
  }));
}

async function loadSettings() {
  const response = await api(`/sites/${state.site}/settings`);
  if (!response.ok) return;
  state.settings = await response.json();
  renderSchedules(state.settings);
}

async function loadChanges() {
  const list = document.getElementById("changes");
  const response = await api(`/sites/${state.site}/audit?kind=changes&limit=20`);
  if (!response.ok) { list.replaceChildren(text("li", response.status === 404 ? "this site keeps no audit log" : "audit log unavailable")); return; }
  const rows = await response.json();
  list.replaceChildren(...rows.reverse().map((r) => text("li", `${r.at.slice(0, 19).replace("T", " ")} ${r.who}: ${r.resource}`)));
}

function setupForms() {
  const days = document.getElementById("schedule-days");
  DAYS.forEach((d) => {
    const label = text("label", "");
    const box = document.createElement("input");
    box.type = "checkbox"; box.value = d;
    label.append(box, d);
    days.append(label);
  });
  document.getElementById("limit-form").onsubmit = (e) => {
    e.preventDefault();
    const v = num("limit-a");
    if (v > 0) setLimit(v);
  };
  document.getElementById("limit-clear").onclick = () => setLimit(null);
  document.getElementById("schedule-form").onsubmit = (e) => {
    e.preventDefault();
    const entry = {
      name: document.getElementById("schedule-name").value,
      days: [...days.querySelectorAll("input:checked")].map((b) => b.value),
      start: document.getElementById("schedule-start").value,
      end: document.getElementById("schedule-end").value,
      max_current_a: num("schedule-a"),
    };
    put(e.target, "/settings/schedules", [...((state.settings && state.settings.schedules) || []), entry]);
  };
  document.getElementById("group-form").onsubmit = (e) => {
    e.preventDefault();
    const group = document.getElementById("group-id").value;
    const current = (state.settings && state.settings.groups[group]) || {};
    put(e.target, `/settings/groups/${encodeURIComponent(group)}`, Object.assign({}, current, { max_current_a: num("group-a") }));
  };
  const chargerId = document.getElementById("charger-id");
  chargerId.onchange = () => {
    const c = state.chargers.find((x) => x.id === chargerId.value);
    if (!c) return;
    document.getElementById("charger-priority").value = c.priority;
    document.getElementById("charger-cap").value = c.max_current_a < c.rated_max_current_a ? c.max_current_a : "";
    document.getElementById("charger-cap").max = c.rated_max_current_a;
  };
  document.getElementById("charger-form").onsubmit = (e) => {
    e.preventDefault();
    put(e.target, `/settings/chargers/${encodeURIComponent(chargerId.value)}`,
      { priority: num("charger-priority"), max_current_a: num("charger-cap") });
  };
  document.getElementById("needs-form").onsubmit = (e) => {
    e.preventDefault();
    const [charger, connector] = document.getElementById("needs-session").value.split("/");
    const departure = document.getElementById("needs-departure").value;
    const body = {};
    if (departure) body.departure_at = new Date(departure).toISOString();
    if (num("needs-energy") !== null) body.energy_wh = num("needs-energy") * 1000;
    if (num("needs-priority") !== null) body.priority = num("needs-priority");
    put(e.target, `/sessions/${encodeURIComponent(charger)}/${connector}/needs`, body, false);
  };
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
  state.role = who.role;
  if (who.role === "viewer") {
    document.querySelectorAll(".manager").forEach((el) => { el.hidden = true; });
    document.getElementById("read-only").hidden = false;
  }
  setupForms();
  document.getElementById("scope-site").onclick = () => scopeTo(null, null);
  await loadSettings();
  loadChanges();
  loadTimeline();
  stream();
}

main();
