// Drives the system Chromium (never a downloaded browser) through sidekey's admin page for
// tests/admin_page.rs, with playwright-core. Prints one JSON line per step on stdout; the
// Rust test reads them, acts between steps (rotating a value) and checks sidekey's side.
//
//   node drive.mjs page ADMIN_URL ROTATED REVOKED SCREENSHOT   the page lists, updates live, revokes
//   node drive.mjs attack PAGE_URL REBIND_URL                  a page on another origin tries the API
import { chromium } from "playwright-core";

const FLAGS = [
  "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
  "--disable-background-networking", "--disable-component-update", "--disable-sync",
];
const [mode, ...args] = process.argv.slice(2);
const say = (o) => console.log(JSON.stringify(o));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const extra = mode === "attack" ? [`--host-resolver-rules=MAP rebind.test 127.0.0.1`] : [];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [...FLAGS, ...extra],
  timeout: 60000,
});
try {
  if (mode === "page") await page(...args);
  else if (mode === "attack") await attack(...args);
  else throw new Error(`unknown mode ${mode}`);
} finally {
  await browser.close();
}

async function page(admin, rotated, revoked, screenshot) {
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const p = await ctx.newPage();
  const problems = [];
  p.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  p.on("pageerror", (e) => problems.push(String(e)));
  const outside = [];
  p.on("request", (r) => { if (!r.url().startsWith(admin)) outside.push(r.url()); });
  let loads = 0;
  p.on("load", () => { loads += 1; });
  const dialogs = [];
  let accept = false;
  p.on("dialog", (d) => { dialogs.push(d.message()); accept ? d.accept() : d.dismiss(); });

  const fp = (name) => p.$eval(`section.cred[data-name="${name}"] [data-field=fingerprint]`, (e) => e.textContent);
  await p.goto(`${admin}/`);
  await p.waitForSelector(`section.cred[data-name="${rotated}"]`, { timeout: 15000 });
  await p.waitForSelector(`section.cred[data-name="${revoked}"]`, { timeout: 15000 });
  const rows = await p.$$eval("section.cred", (ss) => ss.map((s) => ({
    name: s.dataset.name,
    state: s.querySelector("[data-field=state]").textContent,
    fingerprint: s.querySelector("[data-field=fingerprint]").textContent,
    text: s.innerText,
  })));
  const config = await p.$eval("#config", (e) => e.innerText);
  await p.screenshot({ path: screenshot, fullPage: true });
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
  say({ step: "rotated", before, after: await fp(rotated), loads });

  // Revoke: first the confirmation is dismissed (nothing may happen), then accepted.
  const button = `section.cred[data-name="${revoked}"] button[data-action=revoke]`;
  const old = await fp(revoked);
  await p.click(button);
  await sleep(1000);
  const afterDismiss = await fp(revoked);
  accept = true;
  await p.click(button);
  await p.waitForFunction(() => /Revoked/.test(document.getElementById("notice").textContent), null, { timeout: 20000 });
  await p.waitForFunction(([n, o]) => {
    const e = document.querySelector(`section.cred[data-name="${n}"] [data-field=fingerprint]`);
    return e && e.textContent !== o && e.textContent !== "—";
  }, [revoked, old], { timeout: 20000 });
  await p.click(`section.cred[data-name="${revoked}"] summary`);
  await sleep(200);
  const timeline = await p.$eval(`section.cred[data-name="${revoked}"] [data-field=timeline]`, (e) => e.textContent);
  await p.screenshot({ path: screenshot.replace(/\.png$/, "-revoked.png"), fullPage: true });
  say({
    step: "revoked", before: old, after_dismiss: afterDismiss, after: await fp(revoked),
    notice: await p.$eval("#notice", (e) => e.textContent), timeline, dialogs, loads, problems, outside,
  });
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
