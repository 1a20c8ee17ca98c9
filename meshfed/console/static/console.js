// meshfed console: hash-routed pages over the console's JSON routes; no third-party code.
// Charts are inline SVG drawn here. Every state is shown as an icon and a word, colour only adds.
"use strict";

const main = document.getElementById("main");
const live = document.getElementById("live");
const feed = [];
let current = null;
let refreshTimer = null;

const esc = (v) => String(v ?? "").replace(/[&<>"']/g, (c) => ({
  "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const fmt = (n, d = 2) => (n === null || n === undefined || Number.isNaN(n)) ? "–"
  : Number(n).toLocaleString("en-US", { maximumFractionDigits: d });
const ago = (iso) => {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return s < 90 ? `${Math.round(s)}s ago` : s < 5400 ? `${Math.round(s / 60)}m ago` : `${Math.round(s / 3600)}h ago`;
};
const STATE = {
  healthy: ["s-ok", "✔"], up: ["s-ok", "✔"], ok: ["s-ok", "✔"], Succeeded: ["s-ok", "✔"],
  stale: ["s-warn", "⚠"], syncing: ["s-warn", "↻"], degraded: ["s-warn", "⚠"],
  unknown: ["s-unk", "?"], unset: ["s-unk", "–"],
  unreachable: ["s-bad", "✖"], down: ["s-bad", "✖"], error: ["s-bad", "✖"], Failed: ["s-bad", "✖"],
  Pending: ["s-unk", "…"], CheckingPreconditions: ["s-unk", "…"], Running: ["s-unk", "▶"],
  RollingBack: ["s-warn", "↺"], Verifying: ["s-unk", "↻"], Aborted: ["s-warn", "⚠"], Refused: ["s-bad", "✖"],
  Confirmed: ["s-ok", "✔"], Refuted: ["s-bad", "✖"], Inconclusive: ["s-warn", "?"],
};
const badge = (word, label) => {
  const [cls, icon] = STATE[word] || ["s-unk", "•"];
  return `<span class="badge ${cls}" data-state="${esc(word)}">${icon} ${esc(label ?? word)}</span>`;
};

async function api(path) {
  const r = await fetch(path, { headers: { Accept: "application/json" } });
  let body;
  try { body = await r.json(); } catch { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) throw new Error(body.error || `${r.status}`);
  return body;
}
const errorBox = (e) => `<p class="error" role="alert">${esc(e.message || e)}</p>`;
const qs = (params) => new URLSearchParams(Object.entries(params).filter(([, v]) => v !== "" && v !== undefined)).toString();

// ---- charts ---------------------------------------------------------------------------
const PALETTE = ["#2454c5", "#c2410c", "#15803d", "#7e22ce", "#0e7490", "#a16207"];
const DASHES = ["", "6 3", "2 3", "8 3 2 3", "1 2", "10 4"];
const style = (i) => `stroke="${PALETTE[i % PALETTE.length]}" stroke-dasharray="${DASHES[i % DASHES.length]}"`;

function lineChart(title, series, unit, t0, t1) {
  const W = 480, H = 180, L = 52, R = 8, T = 8, B = 24;
  const pts = series.flatMap((s) => s.points);
  const ymax = Math.max(1e-9, ...pts.map((p) => p[1])) * 1.1;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - v / ymax) * (H - T - B);
  const ticks = [0, 0.5, 1].map((f) => f * ymax);
  let svg = `<svg viewBox="0 0 ${W} ${H}" role="img" aria-label="${esc(title)}">`;
  for (const v of ticks) {
    svg += `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="#e3e7ee"/>`;
    svg += `<text x="${L - 4}" y="${y(v) + 4}" font-size="10" text-anchor="end" fill="#5b6475">${esc(fmt(v, 3))}</text>`;
  }
  for (const [t, anchor] of [[t0, "start"], [(t0 + t1) / 2, "middle"], [t1, "end"]]) {
    const label = new Date(t * 1000).toISOString().slice(11, 16);
    svg += `<text x="${x(t)}" y="${H - 6}" font-size="10" text-anchor="${anchor}" fill="#5b6475">${label} UTC</text>`;
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join("");
    svg += `<path d="${d}" fill="none" stroke-width="2" ${style(i)}/>`;
  });
  svg += "</svg>";
  const legend = series.map((s, i) => {
    const end = s.points.length ? s.points[s.points.length - 1] : [null, null];
    const last = end[1];
    return `<span data-cluster="${esc(s.cluster)}" data-last="${last ?? ""}" data-t="${end[0] ?? ""}"><svg viewBox="0 0 28 10"><line x1="0" x2="28" y1="5" y2="5" stroke-width="3" ${style(i)}/></svg> ${esc(s.cluster || "(no cluster)")}: <b>${esc(fmt(last, 3))}</b> ${esc(unit)}</span>`;
  }).join("");
  const empty = series.length ? "" : `<p class="muted">No data in this window.</p>`;
  return `<figure class="chart" data-signal="${esc(title)}"><h3>${esc(title)}</h3>${svg}<figcaption class="legend">${legend}</figcaption>${empty}</figure>`;
}

function topologySvg(o) {
  const n = o.clusters.length, W = 400, H = 300, cx = W / 2, cy = H / 2, r = Math.min(W, H) / 2 - 62;
  const pos = {}, out = {};
  o.clusters.forEach((c, i) => {
    const a = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, n);
    pos[c.name] = [cx + r * Math.cos(a), cy + r * Math.sin(a)];
    out[c.name] = [cx + (r + 42) * Math.cos(a), cy + (r + 42) * Math.sin(a) + 4];
  });
  const LINK = { up: ["#1b7f3b", ""], down: ["#b42318", "6 4"], unknown: ["#5b6475", "2 4"] };
  let svg = `<svg viewBox="0 0 ${W} ${H}" width="${W}" role="img" aria-label="Links between clusters">`;
  for (const l of o.links) {
    const [a, b] = [pos[l.a], pos[l.b]];
    const [col, dash] = LINK[l.state] || LINK.unknown;
    svg += `<line x1="${a[0]}" y1="${a[1]}" x2="${b[0]}" y2="${b[1]}" stroke="${col}" stroke-width="3" stroke-dasharray="${dash}"/>`;
    svg += `<text x="${(a[0] + b[0]) / 2}" y="${(a[1] + b[1]) / 2 - 4}" font-size="11" text-anchor="middle" fill="${col}">${esc(l.state)}</text>`;
  }
  for (const c of o.clusters) {
    const [x, y] = pos[c.name];
    const [cls, icon] = STATE[c.health] || STATE.unknown;
    const col = { "s-ok": "#1b7f3b", "s-warn": "#9a6700", "s-bad": "#b42318" }[cls] || "#5b6475";
    svg += `<circle cx="${x}" cy="${y}" r="24" fill="#fff" stroke="${col}" stroke-width="3"/>`;
    svg += `<text x="${x}" y="${y + 4}" font-size="12" text-anchor="middle" font-weight="600">${esc(c.name)}</text>`;
    const [lx, ly] = out[c.name];
    svg += `<text x="${lx}" y="${ly}" font-size="11" text-anchor="middle" fill="${col}">${icon} ${esc(c.health)}</text>`;
  }
  return svg + "</svg>";
}

// ---- pages ----------------------------------------------------------------------------
const pages = {};

pages.overview = async () => {
  const o = await api("/api/overview");
  const lead = o.leader.enabled
    ? `${o.leader.leader ? badge("ok", "this replica leads") : badge("unknown", "standby")} holder <b>${esc(o.leader.holder || "none")}</b>, ${o.leader.transitions} transitions`
    : `${badge("ok", "single replica")} (leader election off)`;
  const card = (c) => `<article class="card ${esc(c.health)}" data-cluster="${esc(c.name)}">
    <h3>${esc(c.name)} ${badge(c.health)}</h3><dl>
    <dt>Reachable</dt><dd data-field="reachable">${c.reachable ? "yes" : "no"}</dd>
    <dt>Synced</dt><dd data-field="synced">${c.synced ? "yes" : "no"}</dd>
    <dt>Staleness</dt><dd data-field="staleness">${c.staleness_s === null ? "never synced" : fmt(c.staleness_s, 0) + " s"}</dd>
    <dt>Gateway</dt><dd data-field="gateway">${badge(c.gateway.state)} ${esc(c.gateway.address)}${c.gateway.failures ? ` (${c.gateway.failures} failed)` : ""}</dd>
    <dt>Exported</dt><dd data-field="exported">${c.exported}</dd>
    <dt>Imported</dt><dd data-field="imported">${c.imported}</dd>
    ${c.error ? `<dt>Error</dt><dd class="s-bad">${esc(c.error)}</dd>` : ""}</dl></article>`;
  const byName = Object.fromEntries(o.clusters.map((c) => [c.name, c]));
  const regions = o.regions.map((r) => `<section class="region" aria-label="Region ${esc(r.name)}">
    <h2>Region ${esc(r.name)}</h2><div class="cards">${r.clusters.map((n) => card(byName[n])).join("")}</div></section>`).join("");
  const links = o.links.map((l) => `<tr data-link="${esc(l.a)}-${esc(l.b)}"><td>${esc(l.a)} ↔ ${esc(l.b)}</td><td>${esc(l.via || "gateway")}</td><td>${badge(l.state)}</td></tr>`).join("");
  main.innerHTML = `<h1>Overview</h1>
    <div class="summary">
      <span>Federator ${o.ready ? badge("ok", "ready") : badge("stale", "not ready")}</span>
      <span><b id="n-clusters">${o.clusters.length}</b> clusters</span>
      <span><b id="n-services">${o.services}</b> global services</span>
      <span><b id="n-conflicts">${o.conflicts}</b> conflicts</span>
      <span>last applied ${esc(ago(o.last_applied))}</span>
      <span>${lead}</span></div>
    <div class="regions">${regions}</div>
    <h2>Links between clusters</h2>
    <div class="topo">${topologySvg(o)}
      <div><table aria-label="Links"><thead><tr><th>Link</th><th>Via</th><th>State</th></tr></thead><tbody>${links}</tbody></table>
      <h2>Recent changes (live)</h2><ul class="feed" id="feed">${feedItems()}</ul></div></div>`;
};

const feedItems = () => feed.length ? feed.map((e) => `<li>${esc(e.time?.slice(11, 19))} ${esc(e.op)} ${esc(e.kind)} ${esc(e.namespace)}/${esc(e.name)} in ${esc(e.cluster)}</li>`).join("")
  : `<li class="muted">No changes since this page opened.</li>`;

let servicesData = null;
function renderServices() {
  const d = servicesData;
  const f = document.getElementById("svc-filter").value.trim().toLowerCase();
  const onlyConflicts = document.getElementById("svc-conflicts").checked;
  const exportedIn = document.getElementById("svc-cluster").value;
  const rows = d.services.filter((s) => (!f || `${s.namespace}/${s.name}`.toLowerCase().includes(f))
    && (!onlyConflicts || s.conflicts.length) && (!exportedIn || s.cells[exportedIn]?.exported));
  const cell = (c, cluster) => {
    const applied = c.applied ? `applied ${esc(ago(c.applied))}` : "not applied";
    const prop = `<small data-field="propagation" data-seconds="${c.propagation_s ?? ""}">${c.propagation_s === null ? "propagation –" : `propagated in ${fmt(c.propagation_s, 3)} s`}</small>`;
    if (c.exported) {
      return `<td class="cell" data-cluster="${esc(cluster)}" data-exported="1">⬆ exported${c.stale ? " " + badge("stale") : ""}
        <small>local ${c.local_ready}/${c.local_total} ready · remote ${c.remote_ready}</small>
        <small>weight ${fmt(c.weight * 100, 0)}% · ${applied}</small>${prop}</td>`;
    }
    return `<td class="cell${c.remote_ready ? "" : " none"}" data-cluster="${esc(cluster)}" data-exported="0">${c.remote_ready ? "⬇ imported" : "– none"}
      <small>remote ${c.remote_ready} ready · ${applied}</small>${prop}</td>`;
  };
  const head = d.clusters.map((c) => `<th scope="col">${esc(c)}${d.propagation_s[c] !== undefined ? `<small class="muted"> · mean propagation ${fmt(d.propagation_s[c], 3)} s</small>` : ""}</th>`).join("");
  const body = rows.map((s) => `<tr data-service="${esc(s.namespace)}/${esc(s.name)}">
    <th scope="row"><a href="#/service/${encodeURIComponent(s.namespace)}/${encodeURIComponent(s.name)}">${esc(s.namespace)}/${esc(s.name)}</a></th>
    ${d.clusters.map((c) => cell(s.cells[c], c)).join("")}
    <td class="num" data-field="conflicts">${s.conflicts.length ? `<span class="s-bad" title="${esc(s.conflicts.map((c) => c.message).join("\n"))}">✖ ${s.conflicts.length}</span>` : "0"}</td></tr>`).join("");
  document.getElementById("svc-count").textContent = `${rows.length} of ${d.services.length} services`;
  document.getElementById("svc-table").innerHTML = `<thead><tr><th scope="col">Service</th>${head}<th scope="col" class="num">Conflicts</th></tr></thead><tbody>${body}</tbody>`;
}

pages.services = async () => {
  servicesData = await api("/api/services");
  const prev = document.getElementById("svc-filter")?.value ?? "";
  const prevC = document.getElementById("svc-conflicts")?.checked ?? false;
  const prevX = document.getElementById("svc-cluster")?.value ?? "";
  if (!document.getElementById("svc-table")) {
    main.innerHTML = `<h1>Services</h1><div class="filters" role="search">
      <label>Filter by name<input id="svc-filter" type="search" placeholder="namespace/name"></label>
      <label>Exported in<select id="svc-cluster"><option value="">any cluster</option>${servicesData.clusters.map((c) => `<option>${esc(c)}</option>`).join("")}</select></label>
      <label class="inline"><input id="svc-conflicts" type="checkbox"> only with conflicts</label>
      <span id="svc-count" class="muted" role="status"></span></div>
      <p class="muted">⬆ exported here (local endpoints ready/total, remote = other exporters' ready endpoints; weight = share of all ready endpoints) · ⬇ imported from other clusters · propagated in = from a watch seeing the service's last change to meshfed's write landing in that cluster.</p>
      <div class="scroll"><table id="svc-table" aria-label="Services by cluster"></table></div>`;
    for (const id of ["svc-filter", "svc-conflicts", "svc-cluster"]) document.getElementById(id).addEventListener("input", renderServices);
  }
  document.getElementById("svc-filter").value = prev;
  document.getElementById("svc-conflicts").checked = prevC;
  document.getElementById("svc-cluster").value = prevX;
  renderServices();
};

pages.service = async (ns, name) => {
  const minutes = 15;
  const [s, sig] = await Promise.all([api(`/api/service/${ns}/${name}`),
    api(`/api/signals/${ns}/${name}?minutes=${minutes}`).catch((e) => ({ error: e.message }))]);
  const t1 = Date.now() / 1000, t0 = t1 - minutes * 60;
  const charts = sig.error ? errorBox(sig.error) : [
    ["Request rate", "rate", "req/s"], ["Error ratio (5xx)", "error_ratio", ""],
    ["Latency p50", "p50", "ms"], ["Latency p99", "p99", "ms"]]
    .map(([t, k, u]) => lineChart(t, sig.signals[k], u, t0, t1)).join("");
  const cells = Object.entries(s.cells).map(([c, x]) => `<tr data-cluster="${esc(c)}"><th scope="row">${esc(c)}</th>
    <td>${x.exported ? "⬆ yes" : "no"}</td><td class="num">${x.local_ready}/${x.local_total}</td><td class="num">${x.remote_ready}</td>
    <td class="num">${fmt(x.weight * 100, 0)}%</td><td>${esc(x.applied ? ago(x.applied) : "never")}</td>
    <td class="num" data-field="propagation">${x.propagation_s === null ? "–" : `${fmt(x.propagation_s, 3)} s`}</td></tr>`).join("");
  const eps = s.endpoints.map((e) => `<tr><td>${esc(e.cluster)}</td><td>${esc(e.address)}</td><td>${e.ready ? badge("ok", "ready") : badge("down", "not ready")}</td><td>${esc(e.zone)}</td></tr>`).join("");
  const objects = s.objects === null
    ? `<p class="muted">Start the console with <code>--federation-config</code> to read the ServiceEntry and DestinationRule from each cluster.</p>`
    : s.objects.map((o) => `<details data-cluster="${esc(o.cluster)}"><summary>${esc(o.cluster)}: ${o.error ? badge("error", "unreadable") : `ServiceEntry ${o.service_entry ? "✔" : "✖ absent"}, DestinationRule ${o.destination_rule ? "✔" : "✖ absent"}`}</summary>
      ${o.error ? errorBox(o.error) : `<pre>${esc(JSON.stringify({ serviceEntry: o.service_entry, destinationRule: o.destination_rule }, null, 2))}</pre>`}</details>`).join("");
  const problems = [...s.conflicts.map((c) => `<li>${badge("error", "conflict")} ${esc(c.message)}</li>`),
    ...s.conditions.map((c) => `<li>${badge("stale", c.reason)} ${esc(c.cluster)} ${esc(c.message)}</li>`)].join("");
  main.innerHTML = `<h1>${esc(s.namespace)}/${esc(s.name)} <small class="muted">${esc(s.host)}</small></h1>
    <p><a href="#/traces?service=${encodeURIComponent(s.name)}">Traces of this service</a></p>
    <h2>Golden signals per cluster (last ${minutes} min)</h2><div class="charts">${charts}</div>
    <h2>Per cluster</h2><div class="scroll"><table aria-label="Per cluster"><thead><tr><th>Cluster</th><th>Exported</th><th class="num">Local ready/total</th><th class="num">Remote ready</th><th class="num">Weight</th><th>Last applied</th><th class="num">Last propagation</th></tr></thead><tbody>${cells}</tbody></table></div>
    ${problems ? `<h2>Conflicts and conditions</h2><ul>${problems}</ul>` : ""}
    <h2>Endpoints</h2>${eps ? `<div class="scroll"><table><thead><tr><th>Cluster</th><th>Address</th><th>Ready</th><th>Zone</th></tr></thead><tbody>${eps}</tbody></table></div>` : `<p class="muted">No endpoints listed.</p>`}
    <h2>ServiceEntry / DestinationRule per cluster</h2>${objects}
    <h2>What istiod serves a sidecar (xDS)</h2><div id="xds" aria-busy="true"><p class="muted">Asking istiod…</p></div>`;
  const box = document.getElementById("xds");
  const x = await api(`/api/istiod/${ns}/${name}`).catch((e) => ({ error: e.message }));
  if (box.isConnected) { box.innerHTML = xdsHtml(x); box.dataset.state = x.error ? "error" : x.available ? "shown" : "off"; box.removeAttribute("aria-busy"); }
};

function xdsHtml(x) {
  if (x.error) return errorBox(x.error);
  if (!x.available) return `<p class="muted" id="xds-off">${esc(x.reason)}</p>`;
  return x.clusters.map((c) => {
    const head = `<h3>${esc(c.cluster)} <small class="muted">istiod ${esc(c.address)}${c.node ? ` as ${esc(c.node)}` : ""}</small></h3>`;
    if (c.error) return `<section data-istiod="${esc(c.cluster)}">${head}${errorBox(c.error)}</section>`;
    if (!c.outbound.length) return `<section data-istiod="${esc(c.cluster)}">${head}<p>${badge("unset", "none")} no outbound cluster for this service (of ${c.total_clusters} served).</p></section>`;
    const tables = c.outbound.map((o) => {
      const eps = o.endpoints.map((e) => `<tr data-endpoint="${esc(e.address)}:${e.port}"><td>${esc(e.address)}:${e.port}</td><td class="num">${e.weight}</td><td>${esc(e.locality || "–")}</td><td class="num">${e.priority}</td><td>${esc(e.health)}</td></tr>`).join("");
      return `<div class="xds-cluster" data-outbound="${esc(o.name)}"><p><code>${esc(o.name)}</code> · ${esc(o.discovery)} · TLS ${esc(o.tls.mode)}${o.outlier ? " · outlier detection on" : ""} · <b data-field="endpoints">${o.endpoints.length}</b> endpoints</p>
        ${eps ? `<div class="scroll"><table aria-label="Endpoints istiod serves in ${esc(c.cluster)}"><thead><tr><th>Address</th><th class="num">Weight</th><th>Locality</th><th class="num">Priority</th><th>Health</th></tr></thead><tbody>${eps}</tbody></table></div>` : ""}</div>`;
    }).join("");
    return `<section data-istiod="${esc(c.cluster)}">${head}${tables}</section>`;
  }).join("");
}

function form(id, fields, values) {
  return `<form id="${id}" class="filters" role="search">${fields.map(([name, label, kind]) => kind === "status"
    ? `<label>${label}<select name="${name}"><option value="">any</option>${["error", "ok", "unset"].map((v) => `<option ${values[name] === v ? "selected" : ""}>${v}</option>`).join("")}</select></label>`
    : `<label>${label}<input name="${name}" value="${esc(values[name] || "")}"></label>`).join("")}<button>Search</button></form>`;
}
const hashParams = () => Object.fromEntries(new URLSearchParams(location.hash.split("?")[1] || ""));
function bindForm(id, page) {
  document.getElementById(id).addEventListener("submit", (ev) => {
    ev.preventDefault();
    location.hash = `#/${page}?${qs(Object.fromEntries(new FormData(ev.target)))}`;
  });
}

pages.traces = async () => {
  const p = hashParams();
  main.innerHTML = `<h1>Traces</h1>${form("tr-form", [["service", "Service"], ["cluster", "Cluster"], ["minDuration", "Min duration (e.g. 100ms)"], ["status", "Status", "status"], ["tags", "Tags (key=value)"]], p)}<div id="tr-results"></div>`;
  bindForm("tr-form", "traces");
  const r = await api(`/api/traces?${qs(p)}`);
  const rows = r.traces.map((t) => `<tr data-trace="${esc(t.traceID)}"><td><a href="#/trace/${esc(t.traceID)}">${esc(t.traceID.slice(0, 16))}…</a></td><td>${esc(t.rootServiceName)}</td><td>${esc(t.rootTraceName)}</td><td>${esc(new Date(Number(BigInt(t.startTimeUnixNano) / 1000000n)).toISOString().slice(11, 23))}</td><td class="num">${t.durationMs}</td></tr>`).join("");
  document.getElementById("tr-results").innerHTML = `<p class="muted" role="status" id="tr-count">${r.traces.length} traces${r.truncated ? " (truncated)" : ""}</p>
    <div class="scroll"><table aria-label="Traces"><thead><tr><th>Trace</th><th>Root service</th><th>Root span</th><th>Start (UTC)</th><th class="num">Duration ms</th></tr></thead><tbody>${rows}</tbody></table></div>`;
};

const logRows = (logs, withTrace) => logs.map((l) => `<tr data-trace="${esc(l.traceId)}"><td>${esc(new Date(Number(BigInt(l.timeUnixNano) / 1000000n)).toISOString().slice(11, 23))}</td><td>${esc(l.cluster)}</td><td>${esc(l.tag)}</td><td>${esc(l.severityText || l.severityNumber)}</td><td>${esc(typeof l.body === "string" ? l.body : JSON.stringify(l.body))}</td>
  ${withTrace ? `<td>${l.traceId ? `<a href="#/trace/${esc(l.traceId)}">${esc(l.traceId.slice(0, 8))}…</a>` : ""}</td>` : ""}</tr>`).join("");
const logTable = (logs, withTrace = true) => `<div class="scroll"><table aria-label="Log lines"><thead><tr><th>Time (UTC)</th><th>Cluster</th><th>Tag</th><th>Severity</th><th>Body</th>${withTrace ? "<th>Trace</th>" : ""}</tr></thead><tbody>${logRows(logs, withTrace)}</tbody></table></div>`;

pages.trace = async (id) => {
  const t = await api(`/api/trace/${id}`);
  const total = Math.max(t.duration_ms, 1e-6);
  const rows = t.spans.map((s) => `<div class="label" style="padding-left:${s.depth * 12}px" data-span="${esc(s.id)}">${s.status === "error" ? "✖ " : ""}<b>${esc(s.service)}</b> ${esc(s.name)} <span class="muted">${esc(s.cluster)}</span></div>
    <div class="track" aria-label="${esc(s.name)} ${fmt(s.duration_ms, 3)} ms"><div class="bar ${s.status === "error" ? "error" : ""}" style="left:${(s.offset_ms / total) * 100}%;width:${(s.duration_ms / total) * 100}%"></div><span class="dur">${fmt(s.duration_ms, 3)} ms</span></div>`).join("");
  main.innerHTML = `<h1>Trace <code>${esc(id)}</code></h1><p><span id="tr-spans">${t.spans.length}</span> spans, ${fmt(t.duration_ms, 3)} ms</p>
    <div class="split"><section aria-label="Waterfall"><h2>Waterfall</h2><div class="wf">${rows}</div></section>
    <section aria-label="Logs of this trace"><h2>Logs of this trace (<span id="tr-logs">${t.logs.length}</span>)</h2>${t.logs.length ? logTable(t.logs, false) : `<p class="muted">No log lines carry this trace id.</p>`}</section></div>`;
};

pages.logs = async () => {
  const p = hashParams();
  main.innerHTML = `<h1>Logs</h1>${form("lg-form", [["cluster", "Cluster"], ["tag", "Tag"], ["contains", "Text"], ["trace_id", "Trace id"]], p)}<div id="lg-results"></div>`;
  bindForm("lg-form", "logs");
  const r = await api(`/api/logs?${qs(p)}`);
  document.getElementById("lg-results").innerHTML = `<p class="muted" role="status" id="lg-count">${r.logs.length} lines${r.truncated ? " (truncated)" : ""}</p>${logTable(r.logs)}`;
};

pages.health = async () => {
  const h = await api("/api/health");
  const reasons = (m) => Object.entries(m).filter(([, v]) => v > 0).map(([k, v]) => `${esc(k || "(none)")}: ${fmt(v, 0)}`).join("<br>") || "0";
  const rows = Object.entries(h.receivers).map(([name, r]) => `<tr data-receiver="${esc(name)}"><th scope="row">${esc(name)}</th>
    <td class="num" data-field="received_per_s">${fmt(r.received_per_s, 1)}</td><td class="num" data-field="stored_per_s">${fmt(r.stored_per_s, 1)}</td>
    <td class="num" data-field="received">${fmt(r.received, 0)}</td><td class="num" data-field="stored">${fmt(r.stored, 0)}</td>
    <td data-field="rejected">${reasons(r.rejected)}</td><td data-field="dropped">${reasons(r.dropped)}</td><td class="num">${fmt(r.queue, 0)}</td></tr>`).join("");
  const series = Object.entries(h.series).sort().map(([c, n]) => {
    const pct = (n / h.series_cap) * 100;
    const word = pct >= 90 ? "error" : pct >= 70 ? "stale" : "ok";
    return `<tr data-cluster="${esc(c)}"><th scope="row">${esc(c || "(no cluster label)")}</th><td class="num" data-field="series">${fmt(n, 0)}</td>
      <td><meter min="0" max="${h.series_cap}" value="${n}" low="${h.series_cap * 0.7}" high="${h.series_cap * 0.9}"></meter> ${fmt(pct, 4)}% of ${fmt(h.series_cap, 0)} ${badge(word, word === "ok" ? "ok" : word === "stale" ? "near cap" : "at cap")}</td></tr>`;
  }).join("");
  main.innerHTML = `<h1>Telemetry health</h1><h2>Receivers</h2>
    <div class="scroll"><table aria-label="Receivers"><thead><tr><th>Receiver</th><th class="num">Received/s</th><th class="num">Stored/s</th><th class="num">Received</th><th class="num">Stored</th><th>Rejected by reason</th><th>Dropped by reason</th><th class="num">Queue</th></tr></thead><tbody>${rows}</tbody></table></div>
    <h2>Series per cluster vs cap</h2>${h.series_error ? errorBox(h.series_error) : ""}
    <div class="scroll"><table aria-label="Series per cluster"><thead><tr><th>Cluster</th><th class="num">Series</th><th>Of cap</th></tr></thead><tbody>${series}</tbody></table></div>`;
};

pages.drills = async () => {
  const d = await api("/api/drills");
  const rows = d.drills.map((x) => `<tr data-drill="${esc(x.namespace)}/${esc(x.name)}"><th scope="row"><a href="#/drill/${encodeURIComponent(x.namespace)}/${encodeURIComponent(x.name)}">${esc(x.namespace)}/${esc(x.name)}</a></th>
    <td>${badge(x.phase || "unknown", x.phase || "pending")}</td><td>${x.step < 0 ? "–" : `${x.step + 1}/${x.steps} ${esc(x.step_name)}`}</td>
    <td>${esc(x.verdict || "–")}</td><td>${esc(x.reason || "")}</td><td>${esc(x.targets.join(", "))}</td><td>${esc(x.services.join(", "))}</td>
    <td>${x.halt ? "⏸ halted" : ""}${x.error ? `<span class="s-bad">${esc(x.error)}</span>` : ""}</td></tr>`).join("");
  main.innerHTML = `<h1>Drills</h1><p class="muted">Open a drill for its live timeline and report. The list follows the federator's WatchDrills stream.</p>
    <div class="scroll"><table aria-label="Drills"><thead><tr><th>Drill</th><th>Phase</th><th>Step</th><th>Verdict</th><th>Reason</th><th>Targets</th><th>Services</th><th>Notes</th></tr></thead><tbody>${rows || `<tr><td colspan="8" class="muted">No drills.</td></tr>`}</tbody></table></div>`;
};

pages.drill = async (ns, name) => {
  const x = await api(`/api/drill/${ns}/${name}`);
  const r = x.report;
  const step = x.step < 0 ? "not started" : `${x.step + 1} of ${x.steps}: ${esc(x.step_name)}`;
  const head = `<h1>Drill ${esc(x.namespace)}/${esc(x.name)}</h1>
    <div class="summary"><span>Phase <span id="dr-phase">${badge(x.phase || "Pending", x.phase || "Pending")}</span></span>
      <span>Verdict <span id="dr-verdict">${badge(x.verdict || "unknown", x.verdict || "pending")}</span></span>
      <span>Step <b id="dr-step">${step}</b></span><span>Targets ${esc(x.targets.join(", ") || "–")}</span>
      <span>${x.halt ? badge("stale", "halt requested") : ""}</span></div>
    <p><a id="dr-report" href="/report/drill/${encodeURIComponent(x.namespace)}/${encodeURIComponent(x.name)}" target="_blank" rel="noopener">Full report (HTML, with golden signals and exemplar traces)</a> · <a href="#/drills">All drills</a></p>
    ${x.error ? errorBox(x.error) : ""}`;
  if (!r) { main.innerHTML = `${head}<p class="muted">${esc(x.problem)}</p>`; return; }
  const tl = r.timeline.map((e) => `<tr data-event="${esc(e.event)}"><td class="num">${fmt(e.offsetSeconds, 1)} s</td><td>${esc(e.at.slice(11, 19))}</td><td>${esc(e.event)}</td><td>${esc(e.text)}</td></tr>`).join("");
  const steps = r.steps.map((s) => `<tr data-step="${s.index}"><td class="num">${s.index + 1}</td><td>${esc(s.name)}</td><td>${esc(s.kind)}</td><td>${esc(s.startedAt ? s.startedAt.slice(11, 19) : "–")}</td>
    <td>${Object.entries(s.propagationSeconds).map(([c, v]) => `${esc(c)} ${v === null ? "–" : fmt(v, 3) + " s"}`).join(" · ") || "–"}</td></tr>`).join("");
  const guards = r.guards.map((g) => {
    const last = g.evaluations.length ? g.evaluations[g.evaluations.length - 1] : null;
    return `<tr data-guard="${esc(g.name)}"><td>${esc(g.name)}</td><td>${esc(g.kind)}</td><td><code>${esc(g.expr)}</code></td><td class="num">${g.evaluations.length}</td>
      <td>${last ? `${last.value === null ? "n/a" : fmt(last.value, 4)} ${last.holds ? badge("error", "holds") : badge("ok", "clear")}` : "–"}</td><td>${g.breachedAt ? badge("error", "breached " + g.breachedAt.slice(11, 19)) : "–"}</td></tr>`;
  }).join("");
  main.innerHTML = `${head}
    ${r.hypothesis ? `<p>Hypothesis: <i>${esc(r.hypothesis)}</i></p>` : ""}
    <p>Verification: <b id="dr-verification">${esc(r.verification)}</b>${r.breach ? ` · Breach: ${esc(r.breach)}` : ""}</p>
    ${r.problems.length ? `<ul class="problems">${r.problems.map((p) => `<li>${badge("stale", "note")} ${esc(p)}</li>`).join("")}</ul>` : ""}
    <h2>Timeline (live)</h2><div class="scroll"><table id="dr-timeline" aria-label="Timeline"><thead><tr><th class="num">Offset</th><th>Time (UTC)</th><th>Event</th><th>What happened</th></tr></thead><tbody>${tl || `<tr><td colspan="4" class="muted">Nothing yet.</td></tr>`}</tbody></table></div>
    <h2>Steps</h2><div class="scroll"><table aria-label="Steps"><thead><tr><th class="num">#</th><th>Step</th><th>Kind</th><th>Started</th><th>Propagation per cluster</th></tr></thead><tbody>${steps}</tbody></table></div>
    <h2>Guards</h2><div class="scroll"><table aria-label="Guards"><thead><tr><th>Guard</th><th>Kind</th><th>Expression</th><th class="num">Evaluations</th><th>Last value</th><th>Breach</th></tr></thead><tbody>${guards || `<tr><td colspan="6" class="muted">No guards in this drill's spec.</td></tr>`}</tbody></table></div>`;
};

// ---- router and live updates -----------------------------------------------------------
async function route(refresh = false) {
  const [path] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...args] = (path || "overview").split("/").map(decodeURIComponent);
  const name = pages[page] ? page : "overview";
  const nav = { service: "services", trace: "traces", drill: "drills" }[name] || name;
  for (const a of document.querySelectorAll("header nav a")) {
    if (a.dataset.page === nav) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  }
  if (!refresh) { current = name; document.title = `${name} · meshfed console`; main.dataset.page = name; }
  main.setAttribute("aria-busy", "true");
  try {
    if (!refresh) main.innerHTML = `<p class="muted">Loading…</p>`;
    await pages[name](...args.map(encodeURIComponent));
  } catch (e) {
    main.innerHTML = `<h1>${esc(name)}</h1>${errorBox(e)}`;
  } finally {
    main.removeAttribute("aria-busy");
    main.dataset.loaded = String(Date.now());
  }
  if (!refresh) main.focus({ preventScroll: true });
}
window.addEventListener("hashchange", () => route());
const LIVE_PAGES = new Set(["overview", "services", "service", "drills", "drill"]);
function onChange() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { if (LIVE_PAGES.has(current)) route(true); }, 300);
}
function connect() {
  const es = new EventSource("/api/events");
  es.onmessage = (m) => {
    const msg = JSON.parse(m.data);
    if (msg.type === "event") {
      feed.unshift(msg.event); feed.length = Math.min(feed.length, 50);
      live.textContent = `● live · last change ${msg.event.op} ${msg.event.name} in ${msg.event.cluster}`;
      onChange();
    } else if (msg.type === "drill") {
      live.textContent = `● live · drill ${msg.drill.name} ${msg.change}: ${msg.drill.phase || "Pending"}`;
      if (current === "drills" || current === "drill") onChange();
    } else if (msg.type === "watch" || msg.type === "hello") {
      live.textContent = msg.connected ? "● live updates on" : `✖ live updates down: ${msg.error || "watch not connected"}`;
      if (msg.type === "watch") onChange();
    }
  };
  es.onerror = () => { live.textContent = "✖ console unreachable, retrying…"; };
}
route();
connect();
