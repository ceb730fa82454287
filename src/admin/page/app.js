// The admin page: polls the admin API, draws one row per credential, and sends refresh and revoke.
// Everything is built with DOM calls and textContent: no value from the API is ever parsed as HTML.
"use strict";

const POLL_MS = 2000;
const $ = (id) => document.getElementById(id);
// The admin token as typed: kept in this variable only (never in storage, a cookie or the page).
let token = "";
// Actions in flight, as "name/action": their buttons stay disabled across the polls that redraw the rows.
const busy = new Set();

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

function ago(iso) {
  if (!iso) return "—";
  const s = Math.round((Date.parse(iso) - Date.now()) / 1000);
  return `${iso.replace("T", " ").replace("Z", " UTC")} (${span(s)})`;
}

function span(s) {
  const a = Math.abs(s);
  const parts = [[86400, "d"], [3600, "h"], [60, "m"], [1, "s"]];
  let text = "";
  let rest = a;
  for (const [n, u] of parts) {
    if (rest >= n && text.split(" ").length < 3) {
      text += `${Math.floor(rest / n)}${u} `;
      rest %= n;
    }
  }
  if (a === 0) return "now";
  return s > 0 ? `in ${text.trim()}` : `${text.trim()} ago`;
}

function field(name, label, value, cls) {
  return el("div", {}, el("dt", {}, label), el("dd", { "data-field": name, class: cls || "" }, value));
}

// Through which modes a route is served (and its requests in each), and
// where its last redirected connection was going.
function modes(r) {
  const counts = r.requests_by_mode || {};
  const shown = Object.keys(counts).filter((m) => (r.modes || []).includes(m) || counts[m] > 0);
  const via = shown.map((m) => `${m} ${counts[m]}`).join(", ");
  return el("div", { class: "modes", "data-field": "modes" },
    `via ${via || "no mode"}`,
    r.last_original_dst
      ? el("span", { "data-field": "last_original_dst" },
        " · last original destination ", el("span", { class: "mono" }, r.last_original_dst),
        ` ${ago(r.last_original_dst_at)}`)
      : "");
}

function routes(rs) {
  if (!rs.length) return "none";
  return el("ul", { class: "routes" }, ...rs.map((r) =>
    el("li", {}, el("b", {}, r.route), " → ", el("span", { class: "mono" }, r.upstream),
      ` · scopes: ${r.scopes.length ? r.scopes.join("; ") : "everything"}`, modes(r))));
}

function timeline(entries) {
  const list = el("ol", { class: "timeline", reversed: true });
  for (const e of [...(entries || [])].reverse()) {
    list.append(el("li", { class: e.event },
      `${e.at.replace("T", " ").replace("Z", " UTC")} ${e.event.replace("_", " ")}`,
      e.fingerprint ? ` ${e.fingerprint}` : "", e.detail ? `: ${e.detail}` : ""));
  }
  return el("details", { "data-field": "timeline" },
    el("summary", {}, `Timeline (last ${(entries || []).length})`), list);
}

function row(c, open) {
  const prev = c.previous_value_still_valid;
  const d = el("dl", {},
    field("source", "source", c.source),
    field("fingerprint", "fingerprint", c.fingerprint || "—", "mono"),
    field("routes", "routes, upstreams, scopes and modes", routes(c.routes)),
    field("issued_at", "issued", ago(c.issued_at)),
    field("expires_at", "expires (time left)", c.expires_at ? ago(c.expires_at) : "no expiry"),
    field("next_refresh_at", "next refresh", ago(c.next_refresh_at)),
    field("rotations", "rotations", c.rotations),
    field("uses", "uses", c.uses),
    field("upstream_rejections", "upstream rejections", c.upstream_rejections,
      c.upstream_rejects_fresh_values ? "err" : ""),
    field("last_error", "last error", c.last_error || "none", c.last_error ? "err" : ""),
    field("rotation_overdue", "rotation overdue", c.rotation_overdue
      ? `yes (max age ${span(c.max_age_s).replace("in ", "")})` : "no", c.rotation_overdue ? "warn" : ""),
    field("previous_value_still_valid", "old value still valid", prev
      ? `yes: ${prev.fingerprint} accepted by route ${prev.route} (HTTP ${prev.status}, ${prev.checked_at})` : "no",
      prev ? "warn" : ""));
  const t = timeline(c.timeline);
  t.open = open;
  const button = (action, label) => el("button",
    { class: action, type: "button", "data-action": action, disabled: busy.has(`${c.name}/${action}`) }, label);
  const actions = el("div", { class: "actions" }, button("refresh", "Refresh"), button("revoke", "Revoke"));
  return el("section", { class: `cred s-${c.state}`, "data-name": c.name },
    el("div", { class: "cred-head" }, el("h2", {}, c.name),
      el("span", { class: "state", "data-field": "state" }, c.state.replace("_", " ")), actions),
    d, t);
}

function drawConfig(s) {
  const box = $("config");
  box.className = s.reload_ok ? "config" : "config bad";
  box.replaceChildren(
    el("b", {}, s.reload_ok ? "Config OK" : "Config reload refused (the running config stays)"),
    " ", el("span", { class: "mono" }, s.path),
    ` · reloads applied ${s.reloads_applied} of ${s.reload_attempts}`,
    s.last_applied_at ? ` · last applied ${ago(s.last_applied_at)}` : "",
    s.reload_error ? el("div", { class: "err mono", "data-field": "reload_error" }, s.reload_error) : "");
}

async function getJson(path) {
  const r = await fetch(path, { cache: "no-store" });
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return r.json();
}

async function poll() {
  try {
    const [creds, status] = await Promise.all([getJson("/v1/credentials"), getJson("/v1/config/status")]);
    const main = $("credentials");
    const open = new Set([...main.querySelectorAll("section.cred")]
      .filter((s) => s.querySelector("details").open).map((s) => s.dataset.name));
    creds.sort((a, b) => a.name.localeCompare(b.name));
    main.replaceChildren(...creds.map((c) => row(c, open.has(c.name))));
    if (!creds.length) main.append(el("p", {}, "No credentials configured."));
    drawConfig(status);
    $("live").className = "live";
    $("live").textContent = `live · updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    $("live").className = "live down";
    $("live").textContent = `admin API unreachable (${e.message}); retrying`;
  }
}

function notice(text, bad) {
  const n = $("notice");
  n.hidden = false;
  n.className = bad ? "notice error" : "notice";
  n.textContent = text;
}

async function act(name, action, button) {
  const what = action === "revoke"
    ? `Revoke ${name}? Its value is dropped at once, revoked at the source where it can be, and fetched anew. Requests fail until a new value arrives.`
    : `Refresh ${name} now?`;
  const key = `${name}/${action}`;
  if (busy.has(key) || !window.confirm(what)) return;
  busy.add(key);
  button.disabled = true;
  const headers = token ? { Authorization: `Bearer ${token}` } : {};
  try {
    const r = await fetch(`/v1/credentials/${encodeURIComponent(name)}/${action}`, { method: "POST", headers });
    const body = await r.json().catch(() => ({}));
    if (r.ok) {
      notice(`${action === "revoke" ? "Revoked" : "Refreshed"} ${name}: now ${body.state}, fingerprint ${body.fingerprint || "none"}`, false);
    } else {
      const err = body.error || {};
      const hint = r.status === 401 ? " Type the admin token in the field above." : "";
      notice(`${action} ${name} failed (HTTP ${r.status} ${err.code || ""}): ${err.message || ""}${hint}`, true);
    }
  } catch (e) {
    notice(`${action} ${name} failed: ${e.message}`, true);
  } finally {
    busy.delete(key);
    button.disabled = false;
    poll();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("token").addEventListener("input", (e) => { token = e.target.value.trim(); });
  $("credentials").addEventListener("click", (e) => {
    const b = e.target.closest("button[data-action]");
    if (b) act(b.closest("section.cred").dataset.name, b.dataset.action, b);
  });
  poll();
  setInterval(poll, POLL_MS);
});
