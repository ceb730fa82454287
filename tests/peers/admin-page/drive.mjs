// Drives the system Chromium (never a downloaded browser) through sidekey's admin page for
// tests/admin_page.rs and tests/admin_page_findings.rs, with playwright-core. Prints one JSON
// line per step on stdout; the Rust test reads them, acts between steps (rotating a value) and
// checks sidekey's side.
//
//   node drive.mjs page ADMIN_URL ROTATED ACTED SCREENSHOT    the page lists, updates live, refreshes, revokes
//   node drive.mjs token ADMIN_URL NAME TOKEN                   the buttons with `[admin] token` set
//   node drive.mjs findings ADMIN_URL SCREENSHOT                failures, findings and a refused reload shown
//   node drive.mjs attack PAGE_URL REBIND_URL                   a page on another origin tries the API
import { chromium } from "playwright-core";

const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const [mode, ...args] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const POLL_MS = 2000; // the page's polling interval (app.js)
const cred = (name) => `section.cred[data-name="${name}"]`;
const fingerprint = (p, name) => p.$eval(`${cred(name)} [data-field=fingerprint]`, (e) => e.textContent);
const noticeText = (p) => p.$eval("#notice", (e) => e.textContent);

const extra = mode === "attack" ? [`--host-resolver-rules=MAP rebind.test 127.0.0.1`] : [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [...FLAGS, ...extra],
  timeout: 60000,
});
try {
  if (mode === "page") await page(...args);
  else if (mode === "token") await withToken(...args);
  else if (mode === "findings") await findings(...args);
  else if (mode === "attack") await attack(...args);
  else throw new Error(`unknown mode ${mode}`);
} finally {
  await browser.close();
}

// A tab on the admin page that records what the checks need: console errors and CSP
// violations (as the page itself sees them), requests leaving the admin origin, page
// loads, the security headers of each file served, and the confirmation dialogs.
async function open(admin, viewport = { width: 1100, height: 900 }) {
  const ctx = await browser.newContext({ viewport });
  await ctx.addInitScript(() => {
    window.__csp = [];
    document.addEventListener("securitypolicyviolation",
      (e) => window.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const p = await ctx.newPage();
  const t = { p, problems: [], cspConsole: [], outside: [], loads: 0, dialogs: [], accept: false, headers: {} };
  p.on("console", (m) => {
    if (m.type() === "error") t.problems.push(m.text());
    if (/content.security.policy/i.test(m.text())) t.cspConsole.push(m.text());
  });
  p.on("pageerror", (e) => t.problems.push(String(e)));
  p.on("request", (r) => { if (!r.url().startsWith(admin)) t.outside.push(r.url()); });
  p.on("response", async (r) => {
    const path = new URL(r.url()).pathname;
    if (["/", "/app.js", "/style.css"].includes(path)) t.headers[path] = await r.allHeaders();
  });
  p.on("load", () => { t.loads += 1; });
  p.on("dialog", (d) => { t.dialogs.push(d.message()); t.accept ? d.accept() : d.dismiss(); });
  await p.goto(`${admin}/`);
  return t;
}

// Clicks `action` on `name`'s row, accepts the confirmation and waits for the notice that follows.
async function act(t, name, action) {
  await t.p.$eval("#notice", (e) => { e.textContent = ""; });
  t.accept = true;
  await t.p.click(`${cred(name)} button[data-action=${action}]`);
  await t.p.waitForFunction(() => document.getElementById("notice").textContent !== "", null, { timeout: 30000 });
  return noticeText(t.p);
}

async function page(admin, rotated, acted, screenshot) {
  const t = await open(admin);
  const { p, dialogs, outside, problems } = t;
  const fp = (name) => fingerprint(p, name);
  await p.waitForSelector(cred(rotated), { timeout: 15000 });
  await p.waitForSelector(cred(acted), { timeout: 15000 });
  const rows = await p.$$eval("section.cred", (ss) => ss.map((s) => ({
    name: s.dataset.name,
    state: s.querySelector("[data-field=state]").textContent,
    fingerprint: s.querySelector("[data-field=fingerprint]").textContent,
    text: s.innerText,
  })));
  const config = await p.$eval("#config", (e) => e.innerText);
  // The README's picture: the page down to its last row.
  const height = await p.evaluate(() => Math.ceil(document.getElementById("credentials").getBoundingClientRect().bottom) + 16);
  await p.screenshot({ path: screenshot, fullPage: true, clip: { x: 0, y: 0, width: 1100, height } });
  await p.setViewportSize({ width: 390, height: 844 });
  await sleep(200);
  const phoneWidth = await p.evaluate(() => document.documentElement.scrollWidth);
  await p.screenshot({ path: screenshot.replace(/\.png$/, "-phone.png"), fullPage: true });
  await p.setViewportSize({ width: 1100, height: 900 });
  say({ step: "listed", rows, config, phone_scroll_width: phoneWidth });

  // The test now rotates `rotated` at its source: the page must show it without a reload.
  const before = await fp(rotated);
  await p.waitForFunction(([n, old]) => {
    const e = document.querySelector(`section.cred[data-name="${n}"] [data-field=fingerprint]`);
    return e && e.textContent !== old;
  }, [rotated, before], { timeout: 20000 });
  say({ step: "rotated", before, after: await fp(rotated), loads: t.loads });

  // Refresh `acted` with its button (its source takes seconds). A poll redraws the row while
  // the answer is awaited (it shows `refreshing`): the redrawn button must stay disabled.
  const beforeRefresh = await fp(acted);
  const refreshButton = `${cred(acted)} button[data-action=refresh]`;
  t.accept = true;
  await p.click(refreshButton);
  const whileInFlight = await (await p.waitForFunction((sel) => {
    const s = document.querySelector(sel);
    const state = s.querySelector("[data-field=state]").textContent;
    return state === "refreshing" && {
      state,
      refresh_disabled: s.querySelector("button[data-action=refresh]").disabled,
      revoke_disabled: s.querySelector("button[data-action=revoke]").disabled,
    };
  }, cred(acted), { timeout: 20000 })).jsonValue();
  await p.waitForFunction(() => /Refreshed/.test(document.getElementById("notice").textContent), null, { timeout: 30000 });
  await p.waitForFunction(([n, o]) => {
    const e = document.querySelector(`section.cred[data-name="${n}"] [data-field=fingerprint]`);
    return e && e.textContent !== o;
  }, [acted, beforeRefresh], { timeout: 20000 });
  say({
    step: "refreshed", before: beforeRefresh, after: await fp(acted), in_flight: whileInFlight,
    enabled_after: await p.$eval(refreshButton, (b) => !b.disabled),
    notice: await noticeText(p), dialogs: dialogs.length, loads: t.loads,
  });
  t.accept = false;

  // Revoke: first the confirmation is dismissed (nothing may happen), then accepted.
  const button = `${cred(acted)} button[data-action=revoke]`;
  const old = await fp(acted);
  await p.click(button);
  await sleep(1000);
  const afterDismiss = await fp(acted);
  t.accept = true;
  await p.click(button);
  await p.waitForFunction(() => /Revoked/.test(document.getElementById("notice").textContent), null, { timeout: 20000 });
  await p.waitForFunction(([n, o]) => {
    const e = document.querySelector(`section.cred[data-name="${n}"] [data-field=fingerprint]`);
    return e && e.textContent !== o && e.textContent !== "—";
  }, [acted, old], { timeout: 20000 });
  await p.click(`${cred(acted)} summary`);
  await sleep(200);
  const timeline = await p.$eval(`${cred(acted)} [data-field=timeline]`, (e) => e.textContent);
  await p.screenshot({ path: screenshot.replace(/\.png$/, "-revoked.png"), fullPage: true });
  say({
    step: "revoked", before: old, after_dismiss: afterDismiss, after: await fp(acted),
    notice: await noticeText(p), timeline, dialogs, loads: t.loads, problems, outside,
    headers: t.headers, csp_console: t.cspConsole, csp_violations: await p.evaluate(() => window.__csp),
  });
}

// With `[admin] token` set: revoke fails with a visible message until the token is typed in.
// The token itself never leaves this function: only what was found about it is reported.
async function withToken(admin, name, token) {
  const t = await open(admin);
  const { p } = t;
  await p.waitForSelector(cred(name), { timeout: 15000 });
  const before = await fingerprint(p, name);
  const refused = await act(t, name, "revoke");
  const noticeClass = await p.$eval("#notice", (e) => e.className);
  await sleep(POLL_MS + 500);
  const afterRefused = await fingerprint(p, name);
  await p.fill("#token", token);
  const revoked = await act(t, name, "revoke");
  await p.waitForFunction(([n, o]) => {
    const e = document.querySelector(`section.cred[data-name="${n}"] [data-field=fingerprint]`);
    return e && e.textContent !== o && e.textContent !== "—";
  }, [name, before], { timeout: 20000 });
  await sleep(POLL_MS + 500); // a poll redraws the page with the token typed in
  const found = await p.evaluate((tok) => {
    const stored = (s) => Object.keys(s).map((k) => k + "=" + s.getItem(k)).join("\n");
    return {
      in_text: document.body.innerText.includes(tok),
      in_html: document.documentElement.outerHTML.includes(tok),
      in_cookie: document.cookie.includes(tok),
      local_storage: stored(localStorage).includes(tok),
      local_storage_keys: localStorage.length,
      session_storage: stored(sessionStorage).includes(tok),
      session_storage_keys: sessionStorage.length,
      field_type: document.getElementById("token").type,
    };
  }, token);
  say({
    step: "token", before, refused, notice_class: noticeClass, after_refused: afterRefused,
    revoked, after: await fingerprint(p, name), found, problems: t.problems,
  });
}

// A page of credentials in unusual states, every timeline opened: what each row shows.
async function findings(admin, screenshot) {
  const t = await open(admin);
  const { p } = t;
  await p.waitForSelector("section.cred", { timeout: 15000 });
  await p.waitForFunction(() => /refused/.test(document.getElementById("config").textContent), null, { timeout: 15000 });
  await p.$$eval("section.cred details", (ds) => ds.forEach((d) => { d.open = true; }));
  await sleep(POLL_MS + 500); // opened timelines stay open across a redraw
  const rows = await p.$$eval("section.cred", (ss) => ss.map((s) => ({
    name: s.dataset.name,
    class: s.className,
    colour: getComputedStyle(s).borderLeftColor,
    state: s.querySelector("[data-field=state]").textContent,
    fields: Object.fromEntries([...s.querySelectorAll("dd[data-field]")].map((d) =>
      [d.dataset.field, { text: d.textContent, class: d.className }])),
    timeline_open: s.querySelector("details").open,
    timeline: [...s.querySelectorAll("ol.timeline li")].map((li) => ({ class: li.className, text: li.textContent })),
  })));
  const config = await p.$eval("#config", (e) => ({ text: e.innerText, class: e.className }));
  await p.screenshot({ path: screenshot, fullPage: true });
  say({ step: "findings", rows, config, problems: t.problems });
}

async function attack(pageUrl, rebindUrl) {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(pageUrl);
  await p.waitForFunction(() => document.body.dataset.done === "yes", null, { timeout: 20000 });
  await sleep(500); // the form's POST lands in the frame
  const report = await p.$eval("#report", (e) => e.textContent);
  // A DNS-rebinding page: its own name, now resolving to 127.0.0.1, on the admin's port.
  const rebound = await p.goto(rebindUrl);
  say({ step: "attacked", report, rebind_status: rebound.status(), rebind_body: await rebound.text() });
}
