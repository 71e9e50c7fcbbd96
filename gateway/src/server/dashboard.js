// The dashboard's code: scripts/embed puts it inline in dashboard.html, and the
// admin API's Content-Security-Policy allows it by its hash.
"use strict";
(function () {
  const KEY = "sluice-admin-token";
  const HISTORY = 60;         // samples kept per series (one a second)
  const PERIOD = 1000;        // ms between updates
  const OPEN_ALL_BELOW = 200; // targets: upstreams start expanded when there are fewer
  const MAX_DOWN_LISTED = 100;
  const COLORS = { c2: "#2e9e4f", c3: "#3a7bd5", c4: "#e69317", c5: "#d64545",
                   p50: "#3a7bd5", p99: "#9c4dcc", rate: "#1f5fbf",
                   al: "#2e9e4f", de: "#e6b217", re: "#d64545" };
  const SERIES = ["rate", "c2", "c3", "c4", "c5", "p50", "p99", "al", "de", "re"];

  const $ = (id) => document.getElementById(id);
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const setText = (e, t) => { if (e.textContent !== t) e.textContent = t; };

  // What the tests (and the curious) can read: how long rendering takes.
  // fetchMs: the admin API's answers; renderMs: the page's work on them.
  const stats = window.sluiceDashboard = { ticks: 0, firstRenderMs: null, lastTickMs: null,
                                           maxTickMs: 0, fetchMs: null, renderMs: null,
                                           maxRenderMs: 0, routes: 0, targets: 0 };

  const st = {
    token: null, running: false, timer: 0, generation: -1, upSignature: null,
    prev: null, prevAt: 0, routes: new Map(), ups: new Map(),
    total: newHistory(), lastUps: null, downKey: "",
  };

  function newHistory() {
    const h = {};
    for (const s of SERIES) h[s] = [];
    return h;
  }

  function push(h, sample) {
    for (const s of SERIES) {
      const a = h[s];
      a.push(sample ? sample[s] : null);
      if (a.length > HISTORY) a.shift();
    }
  }

  // -- the admin API -----------------------------------------------------------------

  class AuthError extends Error {}

  async function api(path, opts) {
    const o = Object.assign({ cache: "no-store", headers: {} }, opts || {});
    if (st.token) o.headers.Authorization = "Bearer " + st.token;
    const r = await fetch(path, o);
    if (r.status === 401) throw new AuthError("the admin API refused the token");
    return r;
  }

  async function json(path) {
    const r = await api(path);
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.json();
  }

  async function text(path) {
    const r = await api(path);
    if (!r.ok) throw new Error(path + ": HTTP " + r.status);
    return r.text();
  }

  // -- Prometheus text ---------------------------------------------------------------

  const LABEL = /(\w+)="((?:[^"\\]|\\.)*)"/g;

  function labels(key, brace) {
    const out = {};
    LABEL.lastIndex = brace;
    let m;
    while ((m = LABEL.exec(key)) !== null)
      out[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    return out;
  }

  function newRouteCounts() {
    return { codes: [0, 0, 0, 0, 0, 0], total: 0, le: [], inf: 0,
             rl: { allowed: 0, delayed: 0, rejected: 0 } };
  }

  // The series the page shows, by route: status classes, the latency
  // histogram (cumulative buckets) and rate-limit decisions.
  function parseMetrics(body) {
    const routes = new Map();
    const out = { routes, conns: {} };
    const route = (name) => {
      let r = routes.get(name);
      if (!r) routes.set(name, (r = newRouteCounts()));
      return r;
    };
    for (const line of body.split("\n")) {
      if (line === "" || line[0] === "#") continue;
      const sp = line.lastIndexOf(" ");
      const key = line.slice(0, sp);
      const value = Number(line.slice(sp + 1));
      const brace = key.indexOf("{");
      const name = brace < 0 ? key : key.slice(0, brace);
      let l;
      switch (name) {
        case "sluice_http_requests_total": {
          l = labels(key, brace);
          const r = route(l.route);
          const cls = Math.floor(Number(l.code) / 100);
          if (cls >= 1 && cls <= 5) r.codes[cls] += value;
          r.total += value;
          break;
        }
        case "sluice_http_request_duration_seconds_bucket":
          l = labels(key, brace);
          if (l.le === "+Inf") route(l.route).inf = value;
          else route(l.route).le.push([Number(l.le), value]);
          break;
        case "sluice_ratelimit_decisions_total":
          l = labels(key, brace);
          if (l.decision in route(l.route).rl) route(l.route).rl[l.decision] += value;
          break;
        case "sluice_connections":
          l = labels(key, brace);
          out.conns[l.state] = value;
          break;
      }
    }
    return out;
  }

  // The q-quantile of the requests that fell in the window, from the
  // difference of two cumulative histograms (linear within a bucket, the
  // highest finite bound for the +Inf bucket, as Prometheus does).
  function quantile(q, bounds, cum, total) {
    if (!(total > 0)) return null;
    const rank = q * total;
    let lo = 0, below = 0;
    for (let i = 0; i < bounds.length; i++) {
      if (cum[i] >= rank) {
        const inside = cum[i] - below;
        return inside > 0 ? lo + (bounds[i] - lo) * (rank - below) / inside : bounds[i];
      }
      lo = bounds[i];
      below = cum[i];
    }
    return bounds.length ? bounds[bounds.length - 1] : null;
  }

  const delta = (a, b) => Math.max(0, a - (b || 0));

  // One second's sample from two scrapes of a route (prev may be missing:
  // a route seen for the first time counted everything since the last one).
  function sample(cur, prev, dt) {
    const p = prev || newRouteCounts();
    const s = { rate: delta(cur.total, p.total) / dt };
    for (let c = 2; c <= 5; c++) s["c" + c] = delta(cur.codes[c], p.codes[c]) / dt;
    const bounds = cur.le.map((b) => b[0]);
    const cum = cur.le.map((b, i) => delta(b[1], p.le[i] ? p.le[i][1] : 0));
    const total = delta(cur.inf, p.inf);
    const p50 = quantile(0.5, bounds, cum, total), p99 = quantile(0.99, bounds, cum, total);
    s.p50 = p50 === null ? null : p50 * 1000;
    s.p99 = p99 === null ? null : p99 * 1000;
    s.al = delta(cur.rl.allowed, p.rl.allowed) / dt;
    s.de = delta(cur.rl.delayed, p.rl.delayed) / dt;
    s.re = delta(cur.rl.rejected, p.rl.rejected) / dt;
    s._window = { bounds, cum, total };
    return s;
  }

  // -- formatting ---------------------------------------------------------------------

  // 1234567 -> "1,234,567" (toLocaleString is slow for thousands of cells).
  const fmtInt = (n) => String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const fmtRate = (n) => (n === null || n === undefined ? "-" : n >= 100 ? n.toFixed(0) : n.toFixed(1)) + "/s";
  const fmtMs = (n) => (n === null || n === undefined ? "-" : n.toFixed(n >= 100 ? 0 : n >= 1 ? 1 : 2) + " ms");

  function fmtDuration(s) {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d) return d + "d " + h + "h";
    if (h) return h + "h " + m + "m";
    if (m) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function fmtTime(iso) {
    const t = new Date(iso);
    return isNaN(t) ? iso : t.toLocaleTimeString("en-GB") + " (" + fmtDuration(Math.max(0, Math.round((Date.now() - t) / 1000))) + " ago)";
  }

  function statusText(s) {
    if (!s) return "-";
    const all = s.c2 + s.c3 + s.c4 + s.c5;
    if (!(all > 0)) return "no traffic";
    const parts = [];
    for (let c = 2; c <= 5; c++)
      if (s["c" + c] > 0) parts.push(c + "xx " + Math.round((100 * s["c" + c]) / all) + "%");
    return parts.join(" \u00b7 ");
  }

  // -- charts -------------------------------------------------------------------------

  // A canvas's backing store at its CSS size in device pixels. Reading the
  // size forces a layout: done when the size may have changed, not per draw.
  function fitCanvas(c, w, h) {
    const dpr = window.devicePixelRatio || 1;
    w = Math.round((w || c.clientWidth) * dpr);
    h = Math.round((h || c.clientHeight) * dpr);
    if (w > 0 && (c.width !== w || c.height !== h)) { c.width = w; c.height = h; }
  }

  // Draw the last HISTORY samples of each series (newest on the right), one
  // slot of the width per second: stacked bars, or lines with a gap where a
  // value is null.
  function draw(c, h, names, stacked) {
    const ctx = c.getContext("2d");
    const w = c.width, ht = c.height, n = HISTORY;
    ctx.clearRect(0, 0, w, ht);
    ctx.fillStyle = "rgba(128, 128, 128, 0.3)"; // the zero line, so that an idle chart shows
    ctx.fillRect(0, ht - 1, w, 1);
    const len = h[names[0]].length;
    if (!len) return;
    const off = n - len, dx = w / n, bar = Math.max(1, dx - 1);
    let max = 0;
    for (let i = 0; i < len; i++) {
      let sum = 0;
      for (const s of names) {
        const v = h[s][i] || 0;
        if (stacked) sum += v; else if (v > max) max = v;
      }
      if (stacked && sum > max) max = sum;
    }
    if (!(max > 0)) max = 1;
    const y = (v) => ht - 1 - (v / max) * (ht - 3);
    if (stacked) {
      const base = new Array(len).fill(0);
      for (const s of names) {
        ctx.fillStyle = COLORS[s];
        for (let i = 0; i < len; i++) {
          const v = h[s][i] || 0;
          if (v > 0) ctx.fillRect((off + i) * dx, y(base[i] + v), bar, y(base[i]) - y(base[i] + v));
          base[i] += v;
        }
      }
      return;
    }
    ctx.lineWidth = Math.max(1, (window.devicePixelRatio || 1) * 1.25);
    for (const s of names) {
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < len; i++) {
        const v = h[s][i];
        if (v === null || v === undefined) { pen = false; continue; }
        const next = h[s][i + 1], x = (off + i + 0.5) * dx;
        if (pen) ctx.lineTo(x, y(v)); else ctx.moveTo(x, y(v));
        if (!pen && (next === null || next === undefined)) { // a lone point: a dot
          ctx.fillStyle = COLORS[s];
          ctx.fillRect(x - ctx.lineWidth, y(v) - ctx.lineWidth, 2 * ctx.lineWidth, 2 * ctx.lineWidth);
        }
        pen = true;
      }
      ctx.strokeStyle = COLORS[s];
      ctx.stroke();
    }
  }

  const CHARTS = [["rate", ["rate"], false], ["status", ["c2", "c3", "c4", "c5"], true],
                  ["latency", ["p50", "p99"], false], ["rl", ["al", "de", "re"], true]];

  const ROUTE_CHART = [110, 24]; // CSS pixels, as td.m canvas says

  function fitOverview() {
    for (const [id] of CHARTS) fitCanvas($("c-" + id));
  }

  function drawOverview() {
    for (const [id, names, stacked] of CHARTS) draw($("c-" + id), st.total, names, stacked);
  }

  function drawRoute(r) {
    if (!r.canvases) {
      r.canvases = CHARTS.map(([id]) => {
        const c = el("canvas");
        fitCanvas(c, ROUTE_CHART[0], ROUTE_CHART[1]);
        r.cells[id].appendChild(c);
        return c;
      });
    }
    CHARTS.forEach(([, names, stacked], i) => draw(r.canvases[i], r.hist, names, stacked));
  }

  // After every DOM write of an update, so that drawing forces no layout.
  function drawCharts() {
    drawOverview();
    for (const r of st.routes.values()) if (r.visible) drawRoute(r);
  }

  // Only rows on screen are drawn: 500 routes cost what 30 do.
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const r = e.target.route;
      r.visible = e.isIntersecting;
      if (r.visible) drawRoute(r);
    }
  }, { rootMargin: "100px" });

  // -- routes ---------------------------------------------------------------------------

  function matchText(m) {
    const parts = [];
    if (m.host) parts.push(m.host);
    if (m.path_exact) parts.push("= " + m.path_exact);
    else if (m.path_regex) parts.push("~ " + m.path_regex);
    else if (m.path) parts.push(m.path);
    if (m.methods && m.methods.length) parts.push(m.methods.join(","));
    for (const [k, v] of Object.entries(m.headers || {})) parts.push(k + ": " + v);
    return parts.join("  ") || "(everything)";
  }

  function buildRoutes(data) {
    const body = $("route-rows");
    const frag = document.createDocumentFragment();
    const next = new Map();
    seen.disconnect();
    for (const conf of data.routes) {
      const old = st.routes.get(conf.name);
      const r = { conf, hist: old ? old.hist : newHistory(), visible: false, canvases: null,
                  cells: {} };
      const tr = el("tr");
      tr.dataset.route = conf.name;
      tr.route = r;
      const add = (key, cls, t) => { const td = el("td", cls, t); tr.appendChild(td); r.cells[key] = td; return td; };
      add("name", "", conf.name);
      add("match", "match", matchText(conf.match) + (conf.strip_prefix ? "  (strip " + conf.strip_prefix + ")" : ""));
      add("upstream", "", conf.upstream || "-");
      add("plugins", "plugins", conf.plugins.join(", ") || "-");
      add("total", "num", "-");
      for (const [id] of CHARTS) {
        const td = add(id, "m");
        r.cells[id + "v"] = td.appendChild(el("div", "v", "-"));
      }
      r.search = [conf.name, r.cells.match.textContent, conf.upstream || "", conf.plugins.join(" ")].join(" ").toLowerCase();
      r.row = tr;
      next.set(conf.name, r);
      frag.appendChild(tr);
    }
    body.replaceChildren(frag);
    st.routes = next;
    for (const r of next.values()) seen.observe(r.row);
    applyRouteFilter();
    stats.routes = next.size;
  }

  function applyRouteFilter() {
    const q = $("route-filter").value.trim().toLowerCase();
    let shown = 0;
    for (const r of st.routes.values()) {
      const hide = q !== "" && !r.search.includes(q);
      if (r.row.hidden !== hide) r.row.hidden = hide;
      if (!hide) shown++;
    }
    setText($("routes-count"), q ? shown + " of " + st.routes.size : String(st.routes.size));
  }

  function updateRoutes(m, dt) {
    for (const [name, r] of st.routes) {
      const cur = m.routes.get(name);
      const s = cur && st.prev ? sample(cur, st.prev.routes.get(name), dt) : null;
      push(r.hist, s || (st.prev ? zeroSample() : null));
      setText(r.cells.total, cur ? fmtInt(cur.total) : "0");
      if (s) {
        setText(r.cells.ratev, fmtRate(s.rate));
        setText(r.cells.statusv, statusText(s));
        setText(r.cells.latencyv, s.p50 === null ? "-" : "p50 " + fmtMs(s.p50) + " \u00b7 p99 " + fmtMs(s.p99));
      } else if (st.prev) {
        setText(r.cells.ratev, fmtRate(0));
        setText(r.cells.statusv, "no traffic");
        setText(r.cells.latencyv, "-");
      }
      const rl = cur ? cur.rl : null;
      const limited = r.conf.plugins.includes("rate_limit") || (rl && rl.allowed + rl.delayed + rl.rejected > 0);
      setText(r.cells.rlv, !limited ? "-" : "allowed " + fmtInt(rl ? rl.allowed : 0) + " \u00b7 delayed " +
              fmtInt(rl ? rl.delayed : 0) + " \u00b7 rejected " + fmtInt(rl ? rl.rejected : 0));
    }
  }

  function zeroSample() {
    return { rate: 0, c2: 0, c3: 0, c4: 0, c5: 0, p50: null, p99: null, al: 0, de: 0, re: 0 };
  }

  // Every route's window summed, unmatched requests ("-") and routes gone
  // since a reload included.
  function updateTotals(m, dt) {
    const s = zeroSample();
    let bounds = null, cum = null, total = 0, any = false;
    if (st.prev) {
      for (const [name, cur] of m.routes) {
        const x = sample(cur, st.prev.routes.get(name), dt);
        any = true;
        for (const k of ["rate", "c2", "c3", "c4", "c5", "al", "de", "re"]) s[k] += x[k];
        if (!bounds) { bounds = x._window.bounds; cum = x._window.cum.slice(); }
        else x._window.cum.forEach((v, i) => { cum[i] = (cum[i] || 0) + v; });
        total += x._window.total;
      }
      if (bounds) {
        const p50 = quantile(0.5, bounds, cum, total), p99 = quantile(0.99, bounds, cum, total);
        s.p50 = p50 === null ? null : p50 * 1000;
        s.p99 = p99 === null ? null : p99 * 1000;
      }
      push(st.total, s);
      setText($("o-rate"), fmtRate(s.rate));
      setText($("o-status"), any ? statusText(s) : "no traffic");
      setText($("o-latency"), s.p50 === null ? "-" : "p50 " + fmtMs(s.p50) + " \u00b7 p99 " + fmtMs(s.p99));
      setText($("o-rl"), s.al + s.de + s.re > 0 ? fmtRate(s.al) + " \u00b7 " + fmtRate(s.de) + " \u00b7 " + fmtRate(s.re) : "-");
    }
    const c = m.conns;
    if (c.open !== undefined) setText($("f-conns"), fmtInt(c.open) + " (" + fmtInt(c.active || 0) + " active)");
  }

  // -- upstreams ----------------------------------------------------------------------

  function targetState(t) {
    if (t.ejected_until) return ["ejected", "ejected until " + fmtClock(t.ejected_until)];
    return t.healthy ? ["up", "up"] : ["down", "down"];
  }

  function fmtClock(iso) {
    const t = new Date(iso);
    return isNaN(t) ? iso : t.toLocaleTimeString("en-GB");
  }

  const TARGET_COLS = [["address", "Target"], ["weight", "Weight", "num"], ["state", "State"],
                       ["active", "In flight", "num"], ["requests", "Requests", "num"],
                       ["rate", "Rate", "num"], ["responses_5xx", "5xx", "num"],
                       ["no_response", "No response", "num"], ["failures", "Failures", "num"],
                       ["ejections", "Ejections", "num"], ["latency_ms", "Latency", "num"],
                       ["last_check", "Last check"]];

  function buildUpstreams(data) {
    const list = $("upstream-list");
    const frag = document.createDocumentFragment();
    const next = new Map();
    let targets = 0;
    for (const u of data.upstreams) targets += u.targets.length;
    for (const u of data.upstreams) {
      const old = st.ups.get(u.name);
      const d = el("details", "upstream");
      d.open = old ? old.el.open : targets < OPEN_ALL_BELOW;
      d.dataset.upstream = u.name;
      const sum = el("summary");
      const x = { el: d, name: u.name, rows: null, cells: {}, prevReq: null };
      for (const [k, cls] of [["name", "name"], ["balance", "sub"], ["health", "sub"], ["up", ""],
                              ["active", "sub"], ["ejections", "sub"], ["rate", "sub"]])
        x.cells[k] = sum.appendChild(el("span", cls));
      x.cells.name.textContent = u.name;
      d.appendChild(sum);
      // Opened between two updates: fill it now from the last answer.
      d.addEventListener("toggle", () => {
        if (d.open && st.lastUps && x.renderedAt !== stats.ticks) renderTargets(x, findUpstream(u.name), 0);
      });
      x.search = (u.name + " " + u.targets.map((t) => t.address + " " + t.name).join(" ")).toLowerCase();
      next.set(u.name, x);
      frag.appendChild(d);
    }
    list.replaceChildren(frag);
    st.ups = next;
    stats.targets = targets;
    setText($("upstreams-count"), data.upstreams.length + " upstreams, " + targets + " targets");
    applyTargetFilter();
  }

  function findUpstream(name) {
    return st.lastUps ? st.lastUps.upstreams.find((u) => u.name === name) : null;
  }

  // The table of an upstream's targets, made the first time it is opened.
  function buildTargets(x, u) {
    const table = el("table");
    const head = el("tr");
    for (const [, title, cls] of TARGET_COLS) head.appendChild(el("th", cls || "", title));
    table.appendChild(el("thead")).appendChild(head);
    const body = table.appendChild(el("tbody"));
    x.rows = u.targets.map((t) => {
      const tr = el("tr");
      tr.dataset.target = u.name + "/" + t.address;
      const cells = {};
      for (const [k, , cls] of TARGET_COLS) cells[k] = tr.appendChild(el("td", cls || ""));
      cells.address.textContent = t.name && t.name !== t.address ? t.address + " (" + t.name + ")" : t.address;
      cells.weight.textContent = t.weight + (t.backup ? " backup" : "");
      cells.state.className = "state";
      body.appendChild(tr);
      return { tr, cells, search: (t.address + " " + t.name).toLowerCase(), prevReq: null };
    });
    x.el.appendChild(table);
    applyTargetFilter();
  }

  function renderTargets(x, u, dt) {
    if (!u) return;
    if (!x.rows) buildTargets(x, u);
    u.targets.forEach((t, i) => {
      const row = x.rows[i];
      if (!row) return;
      const c = row.cells;
      const [cls, label] = targetState(t);
      if (c.state.dataset.state !== cls) { c.state.dataset.state = cls; c.state.className = "state " + cls; }
      setText(c.state, label);
      setText(c.active, fmtInt(t.active));
      setText(c.requests, fmtInt(t.requests));
      setText(c.rate, dt > 0 && row.prevReq !== null ? fmtRate(delta(t.requests, row.prevReq) / dt) : "-");
      setText(c.responses_5xx, fmtInt(t.responses_5xx));
      setText(c.no_response, fmtInt(t.no_response));
      setText(c.failures, fmtInt(t.failures));
      const inRow = t.consecutive_failures ? t.consecutive_failures + " in a row" : "";
      if (c.failures.title !== inRow) c.failures.title = inRow;
      setText(c.ejections, fmtInt(t.ejections));
      setText(c.latency_ms, t.requests ? fmtMs(t.latency_ms) : "-");
      setText(c.last_check, t.last_check || "-");
    });
  }

  function renderUpstreams(data, dt) {
    const sig = data.upstreams.map((u) => u.name + "=" + u.targets.map((t) => t.address).join(",")).join(";");
    if (sig !== st.upSignature) { buildUpstreams(data); st.upSignature = sig; }
    st.lastUps = data;
    const down = [];
    for (const u of data.upstreams) {
      const x = st.ups.get(u.name);
      let up = 0, active = 0, ejections = 0, req = 0;
      for (const t of u.targets) {
        const [cls, label] = targetState(t);
        if (cls === "up") up++;
        else down.push([u.name, t, label]);
        active += t.active;
        ejections += t.ejections;
        req += t.requests;
      }
      const c = x.cells;
      setText(c.balance, u.balance);
      setText(c.health, u.health_check ? "health checks on" : "no health checks");
      setText(c.up, up + "/" + u.targets.length + " up");
      c.up.className = up < u.targets.length ? "bad" : "ok";
      setText(c.active, "in flight " + fmtInt(active));
      setText(c.ejections, "ejections " + fmtInt(ejections));
      setText(c.rate, dt > 0 && x.prevReq !== null ? fmtRate(delta(req, x.prevReq) / dt) : "");
      x.prevReq = req;
      if (x.el.open) { renderTargets(x, u, dt); x.renderedAt = stats.ticks + 1; }
      if (x.rows) x.rows.forEach((row, i) => { if (u.targets[i]) row.prevReq = u.targets[i].requests; });
    }
    renderDown(down);
  }

  function renderDown(down) {
    const key = down.map(([u, t, label]) => u + "/" + t.address + "=" + label + "=" + (t.last_check || "")).join("\n");
    if (key === st.downKey) return;
    st.downKey = key;
    $("attention").hidden = down.length === 0;
    setText($("down-count"), String(down.length));
    const frag = document.createDocumentFragment();
    for (const [u, t, label] of down.slice(0, MAX_DOWN_LISTED)) {
      const li = el("li");
      li.dataset.target = u + "/" + t.address;
      li.appendChild(el("b", "", u + " " + t.address));
      li.appendChild(el("span", "state " + (label === "down" ? "down" : "ejected"), " " + label));
      if (t.last_check) li.appendChild(el("span", "muted", " \u2014 " + t.last_check));
      frag.appendChild(li);
    }
    if (down.length > MAX_DOWN_LISTED)
      frag.appendChild(el("li", "muted", "and " + (down.length - MAX_DOWN_LISTED) + " more"));
    $("down-list").replaceChildren(frag);
  }

  function applyTargetFilter() {
    const q = $("target-filter").value.trim().toLowerCase();
    for (const x of st.ups.values()) {
      const nameHit = q === "" || x.name.toLowerCase().includes(q);
      const hide = !nameHit && !x.search.includes(q);
      if (x.el.hidden !== hide) x.el.hidden = hide;
      if (x.rows)
        for (const row of x.rows) {
          const h = !nameHit && !row.search.includes(q);
          if (row.tr.hidden !== h) row.tr.hidden = h;
        }
    }
  }

  // -- status and reloads -----------------------------------------------------------------

  function renderStatus(s) {
    setText($("f-version"), s.version);
    setText($("f-generation"), String(s.generation));
    setText($("f-workers"), String(s.workers));
    setText($("f-uptime"), fmtDuration(s.uptime_s));
    setText($("config-file"), s.config_file + ": generation " + s.generation + ", loaded at " + fmtTime(s.loaded_at));
    const r = s.last_reload, summary = $("reload-summary"), errors = $("reload-errors");
    if (!r) {
      setText(summary, "No reload since the start.");
      summary.className = "muted";
      errors.hidden = true;
      return;
    }
    if (r.result === "ok") {
      setText(summary, "Last reload: ok at " + fmtTime(r.at) + ", generation " + r.generation + ".");
      summary.className = "ok";
      errors.hidden = true;
      return;
    }
    setText(summary, "Last reload failed at " + fmtTime(r.at) + "; generation " + r.generation +
            " keeps serving. The errors:");
    summary.className = "error";
    setText(errors, r.errors || "(no details)");
    errors.hidden = false;
  }

  // -- the loop -------------------------------------------------------------------------

  function setConn(cls, t) {
    const b = $("conn");
    b.className = "badge " + cls;
    setText(b, t);
  }

  async function tick() {
    const t0 = performance.now();
    st.timer = 0;
    try {
      const [status, metrics, ups] = await Promise.all([json("/status"), text("/metrics"), json("/upstreams")]);
      if (!st.running) return;
      if (status.generation !== st.generation) {
        const routes = await json("/routes");
        if (!st.running) return;
        buildRoutes(routes);
        st.generation = status.generation;
      }
      const now = performance.now();
      stats.fetchMs = Math.round(now - t0);
      const dt = st.prev ? Math.max(0.001, (now - st.prevAt) / 1000) : 0;
      const m = parseMetrics(metrics);
      renderStatus(status);
      updateRoutes(m, dt);
      updateTotals(m, dt);
      renderUpstreams(ups, dt);
      drawCharts();
      st.prev = m;
      st.prevAt = now;
      setConn("live", "live");
      stats.ticks++;
      stats.lastTickMs = Math.round(performance.now() - t0);
      stats.renderMs = Math.round(performance.now() - now);
      stats.maxRenderMs = Math.max(stats.maxRenderMs, stats.renderMs);
      stats.maxTickMs = Math.max(stats.maxTickMs, stats.lastTickMs);
      if (stats.firstRenderMs === null) stats.firstRenderMs = Math.round(performance.now());
      setText($("footer"), "updated " + new Date().toLocaleTimeString("en-GB") + " in " + stats.lastTickMs + " ms");
    } catch (e) {
      if (e instanceof AuthError) { askToken(e.message); return; }
      if (e instanceof TypeError && /fetch/i.test(e.message)) setConn("offline", "offline: the admin API does not answer");
      else { setConn("offline", "error: " + e.message); console.error("sluice dashboard:", e); }
    }
    if (st.running) st.timer = setTimeout(tick, Math.max(50, PERIOD - (performance.now() - t0)));
  }

  function start() {
    $("login").hidden = true;
    $("main").hidden = false;
    $("forget").hidden = !st.token;
    fitOverview();
    st.running = true;
    st.prev = null;
    st.generation = -1;
    if (!st.timer) tick();
  }

  function askToken(why) {
    st.running = false;
    clearTimeout(st.timer);
    st.timer = 0;
    st.token = null;
    sessionStorage.removeItem(KEY);
    $("main").hidden = true;
    $("login").hidden = false;
    setText($("login-error"), why || "");
    setConn("", "not connected");
    $("token").focus();
  }

  $("login").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const t = $("token").value.trim();
    if (!t) return;
    st.token = t;
    sessionStorage.setItem(KEY, t);
    $("token").value = "";
    start();
  });

  $("forget").addEventListener("click", () => askToken(""));

  $("reload").addEventListener("click", async () => {
    const b = $("reload");
    b.disabled = true;
    try {
      await api("/reload", { method: "POST" });
      clearTimeout(st.timer);
      st.timer = 0;
      if (st.running) tick();
    } catch (e) {
      if (e instanceof AuthError) askToken(e.message);
      else setConn("offline", "reload: " + e.message);
    } finally {
      b.disabled = false;
    }
  });

  window.addEventListener("resize", () => { fitOverview(); drawOverview(); });
  $("route-filter").addEventListener("input", applyRouteFilter);
  $("target-filter").addEventListener("input", applyTargetFilter);
  $("expand-all").addEventListener("click", () => { for (const x of st.ups.values()) x.el.open = true; });
  $("collapse-all").addEventListener("click", () => { for (const x of st.ups.values()) x.el.open = false; });

  const saved = sessionStorage.getItem(KEY);
  if (saved) { st.token = saved; start(); }
  else if (document.documentElement.dataset.auth === "token") askToken("");
  else start();
})();
