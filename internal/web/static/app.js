// kbox dashboard: polls /api/snapshot, follows /api/events (SSE). The
// charts are drawn on canvases by the few functions below.
"use strict";
const $ = (id) => document.getElementById(id);
const colors = ["#2b6cb0", "#c05621", "#2f855a", "#9b2c2c", "#6b46c1", "#b7791f", "#2c7a7b", "#97266d", "#4a5568", "#dd6b20", "#38a169", "#3182ce"];
const famColor = {};
function colorOf(f) {
  if (!(f in famColor)) famColor[f] = colors[Object.keys(famColor).length % colors.length];
  return famColor[f];
}

function drawRate(rate) {
  const cv = $("rate"), g = cv.getContext("2d"), W = cv.width, H = cv.height, pad = 36;
  g.clearRect(0, 0, W, H);
  // Complete seconds only: the last one is still counting.
  rate = { families: rate.families, seconds: rate.seconds.slice(0, -1), by_family: rate.by_family.slice(0, -1) };
  const n = rate.seconds.length;
  let top = 1;
  for (const m of rate.by_family) for (const f of rate.families) top = Math.max(top, m[f] || 0);
  g.strokeStyle = "#ccc"; g.fillStyle = "#666"; g.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) {
    const y = H - pad / 2 - (H - pad) * i / 4;
    g.beginPath(); g.moveTo(pad, y); g.lineTo(W, y); g.stroke();
    g.fillText(Math.round(top * i / 4), 2, y + 4);
  }
  const x = (i) => pad + (W - pad) * (i / Math.max(59, n - 1));
  const y = (v) => H - pad / 2 - (H - pad) * v / top;
  let lines = 0;
  for (const f of rate.families) {
    g.strokeStyle = colorOf(f); g.lineWidth = 2; g.beginPath();
    rate.by_family.forEach((m, i) => { const v = m[f] || 0; i ? g.lineTo(x(i), y(v)) : g.moveTo(x(i), y(v)); });
    g.stroke(); lines++;
  }
  cv.dataset.lines = lines;
  cv.dataset.points = n;
  $("legend").innerHTML = rate.families.map((f) => {
    const last = n ? (rate.by_family[n - 1][f] || 0) : 0;
    return `<span><i style="background:${colorOf(f)}"></i>${esc(f)} ${last}/s</span>`;
  }).join("");
}

function drawLatency(lat) {
  const cv = $("latency"), g = cv.getContext("2d"), W = cv.width, H = cv.height;
  g.clearRect(0, 0, W, H);
  const rows = lat.slice(0, 10), left = 110, rowH = Math.floor((H - 20) / 10);
  let hi = 1000;
  for (const r of rows) hi = Math.max(hi, r.p99_ns);
  const lo = 100, right = 120, lx = (ns) => left + (W - left - right) * (Math.log10(Math.max(ns, lo)) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo) || 1);
  g.font = "11px sans-serif";
  rows.forEach((r, i) => {
    const yy = 4 + i * rowH;
    g.fillStyle = "#333"; g.fillText(r.name, 2, yy + rowH - 6);
    g.fillStyle = "#bee3f8"; g.fillRect(left, yy + 2, lx(r.p99_ns) - left, rowH - 4);
    g.fillStyle = "#2b6cb0"; g.fillRect(left, yy + 2, lx(r.p50_ns) - left, rowH - 4);
    g.fillStyle = "#333"; g.fillText(fmtNs(r.p50_ns) + " / " + fmtNs(r.p99_ns), W - right + 6, yy + rowH - 6);
  });
  g.fillStyle = "#666"; g.fillText(fmtNs(lo), left, H - 4); g.fillText(fmtNs(hi), W - right - 40, H - 4);
  cv.dataset.rows = rows.length;
}

function fmtNs(ns) {
  if (ns >= 1e9) return (ns / 1e9).toFixed(2) + "s";
  if (ns >= 1e6) return (ns / 1e6).toFixed(1) + "ms";
  if (ns >= 1e3) return (ns / 1e3).toFixed(1) + "µs";
  return ns + "ns";
}
function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }

function drawProcs(procs) {
  const depth = {};
  const rows = procs.map((p) => {
    depth[p.pid] = (p.ppid in depth) ? depth[p.ppid] + 1 : 0;
    const cmd = (p.argv.length ? p.argv.join(" ") : "[" + p.comm + "]");
    return `<tr data-pid="${p.pid}" data-comm="${esc(p.comm)}"><td>${p.pid}</td><td class="cmd" style="padding-left:${6 + 14 * depth[p.pid]}px">${esc(cmd)}</td>` +
      `<td>${p.cpu_pct.toFixed(0)}</td><td>${(p.cpu_user_s + p.cpu_sys_s).toFixed(2)}</td><td>${(p.rss_kb / 1024).toFixed(1)} MiB</td>` +
      `<td>${p.minflt}/${p.majflt}</td><td>${p.ctxsw_voluntary}/${p.ctxsw_involuntary}</td></tr>`;
  });
  $("procs").tBodies[0].innerHTML = rows.join("");
}

function drawErrs(enosys, eperm) {
  const names = [...new Set([...Object.keys(enosys), ...Object.keys(eperm)])].sort();
  $("errs").tBodies[0].innerHTML = names.map((n) => `<tr><td>${esc(n)}</td><td>${enosys[n] || ""}</td><td>${eperm[n] || ""}</td></tr>`).join("");
}

let lostSSE = 0, lostSnap = 0;
async function poll() {
  try {
    const r = await fetch("api/snapshot", { cache: "no-store" });
    const s = await r.json();
    $("tier").textContent = s.tier + (s.tier_reason ? " (" + s.tier_reason + ")" : "");
    $("calls").textContent = s.calls;
    $("errors").textContent = s.errors;
    lostSnap = s.events.upstream_dropped;
    $("lost").textContent = (lostSnap + lostSSE);
    $("sampled").textContent = s.events.sampled_out;
    $("fast").textContent = s.fast_path.calls;
    const st = $("status");
    if (s.running) { st.textContent = "running"; st.className = "pill running"; }
    else { st.textContent = "ended " + JSON.stringify(s.exit); st.className = "pill ended"; }
    drawRate(s.rate); drawLatency(s.latency); drawProcs(s.processes); drawErrs(s.enosys, s.eperm);
    document.body.dataset.snapshots = (+document.body.dataset.snapshots || 0) + 1;
  } catch (e) {
    $("status").textContent = "server gone"; $("status").className = "pill";
  }
  setTimeout(poll, 1000);
}

const feedMax = 300;
let received = 0;
function matches(ev) {
  if ($("onlyerr").checked && !ev.errno) return false;
  const q = $("filter").value.trim().toLowerCase();
  if (!q) return true;
  const text = line(ev).toLowerCase();
  return q.split(/\s+/).every((w) => text.includes(w));
}
function line(ev) {
  const res = ev.errno ? "-1 " + ev.errno : (ev.ret === null ? "?" : ev.ret);
  return `${(ev.ts_ns / 1e9).toFixed(6)} [pid ${ev.pid}] ${ev.name}(${ev.args.join(", ")}) = ${res} <${fmtNs(ev.lat_ns)}> ${ev.disp}`;
}
function addEvent(ev) {
  received++;
  $("feedinfo").textContent = `(${received} received, last #${ev.seq})`;
  if ($("pause").checked) return;
  const li = document.createElement("li");
  li.textContent = line(ev);
  li.dataset.seq = ev.seq;
  li.ev = ev;
  if (ev.errno) li.className = "err";
  else if (ev.family === "process" || ev.family === "exec") li.className = "proc";
  li.hidden = !matches(ev);
  const feed = $("feed");
  feed.prepend(li);
  while (feed.children.length > feedMax) feed.lastChild.remove();
}
function follow() {
  const es = new EventSource("api/events");
  es.addEventListener("syscall", (m) => addEvent(JSON.parse(m.data)));
  es.addEventListener("dropped", (m) => { lostSSE = JSON.parse(m.data).dropped; });
  es.addEventListener("end", (m) => { $("feedinfo").textContent += " — guest ended " + m.data; });
}
function refilter() { for (const li of $("feed").children) li.hidden = !matches(li.ev); }
$("filter").addEventListener("input", refilter);
$("onlyerr").addEventListener("change", refilter);
poll();
follow();
