// The page in a real browser: Debian's chromium driven by playwright-core,
// against the local server (BASE_URL, on 127.0.0.1). Asserts what a person
// sees; writes screenshots into docs/screenshots. Run by scripts/browser-test.sh.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateKeyPairSync, sign as cryptoSign } from "node:crypto";
import { createServer } from "node:http";
import { spawn } from "node:child_process";

const BASE = process.env.BASE_URL;
const SHOTS = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM;
const LOCAL_BIN = process.env.LOCAL_BIN;
assert.ok(BASE && SHOTS && executablePath && LOCAL_BIN, "BASE_URL, SCREENSHOTS, CHROMIUM and LOCAL_BIN are set");
const WAIT = { timeout: 15000 };

async function apiGet(path) {
  const r = await fetch(BASE + path);
  assert.equal(r.status, 200, path);
  return r.json();
}

const totalOf = (text) => Number(text.replace(/[^0-9]/g, ""));

async function shownTotal(page) {
  return totalOf(await page.locator("#total").innerText());
}

async function waitForTotal(page, n) {
  await page.waitForFunction(
    (want) => Number(document.querySelector("#total").textContent.replace(/[^0-9]/g, "")) === want,
    n,
    WAIT,
  );
}

async function step(name, fn) {
  const t = Date.now();
  await fn();
  console.log(`ok - ${name} (${Date.now() - t} ms)`);
}

const browser = await chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(e.message));

  let everybody;
  await step("the page loads and shows everybody", async () => {
    await page.goto(BASE + "/");
    everybody = (await apiGet("/people?page_size=1")).total;
    await waitForTotal(page, everybody);
    assert.equal(await page.locator("#people tbody tr").count(), 20);
    await page.locator("#socket-state", { hasText: "connected" }).waitFor(WAIT);
  });

  await step("typing narrows the table and the total", async () => {
    await page.getByRole("searchbox", { name: "Search by name" }).pressSequentially("jo", { delay: 30 });
    const want = (await apiGet("/people?search=jo&page_size=1")).total;
    assert.ok(want < everybody);
    await waitForTotal(page, want);
    const marks = await page.locator("#people tbody mark").allInnerTexts();
    assert.ok(marks.length >= 20, "every row has a highlighted match");
    for (const m of marks) assert.equal(m.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase(), "jo");
  });

  let picked;
  await step("a facet click filters and keeps the other counts", async () => {
    const first = page.locator("#facet-nationality li").first();
    picked = await first.locator("input").getAttribute("value");
    const others = await page.locator("#facet-nationality li").count();
    await first.locator("input").check();
    const q = `search=jo&nationality=${encodeURIComponent(picked)}`;
    const api = await apiGet(`/people?${q}&page_size=1&facets=nationality,hobbies`);
    await waitForTotal(page, api.total);
    // Still every nationality, each with its count for "jo" alone.
    assert.equal(await page.locator("#facet-nationality li").count(), others);
    const shown = await page.locator("#facet-nationality li").allInnerTexts();
    for (const { value, count } of api.facets.nationality) {
      assert.ok(shown.some((t) => t.includes(value) && totalOf(t.replace(value, "")) === count), `${value} ${count}`);
    }
    // The hobby counts follow the pick.
    const hobby = api.facets.hobbies[0];
    const row = page.locator("#facet-hobbies li", { hasText: hobby.value }).first();
    assert.equal(totalOf((await row.innerText()).replace(hobby.value, "")), hobby.count);
  });

  await step("the URL round-trips and the back button works", async () => {
    const url = page.url();
    assert.match(url, /search=jo/);
    assert.match(url, new RegExp(`nationality=${encodeURIComponent(picked).replace(/%20/g, "(\\+|%20)")}`));
    const filtered = await shownTotal(page);
    const other = await context.newPage();
    await other.goto(url);
    await waitForTotal(other, filtered);
    assert.equal(await other.getByRole("searchbox", { name: "Search by name" }).inputValue(), "jo");
    assert.ok(await other.locator(`#facet-nationality input[value="${picked}"]`).isChecked());
    await other.close();
    await page.locator("#next").click();
    await page.waitForURL(/cursor=/, WAIT);
    await page.goBack();
    await page.waitForURL((u) => !u.search.includes("cursor="), WAIT);
    await page.goBack();
    await waitForTotal(page, (await apiGet("/people?search=jo&page_size=1")).total);
    assert.ok(!(await page.locator(`#facet-nationality input[value="${picked}"]`).isChecked()));
  });

  await page.screenshot({ path: join(SHOTS, "search.png"), fullPage: false });

  await step("a misspelt name offers 'did you mean'", async () => {
    const someone = (await apiGet("/people?search=smith&page_size=1")).items[0] || (await apiGet("/people?page_size=1&page=7")).items[0];
    const last = someone.last_name;
    const typo = last.length >= 5 ? last[0] + last[2] + last[1] + last.slice(3) : last;
    await page.getByRole("searchbox", { name: "Search by name" }).fill(typo);
    await page.locator("#did-you-mean").waitFor({ state: "visible", ...WAIT });
    assert.match(await page.locator("#did-you-mean").innerText(), /Did you mean/);
    assert.ok((await shownTotal(page)) > 0);
    await page.getByRole("searchbox", { name: "Search by name" }).fill("");
  });

  await step("a report's charts appear", async () => {
    await page.getByRole("button", { name: "Report on these results" }).click();
    await page.locator("#report-status", { hasText: "completed" }).waitFor(WAIT);
    assert.equal(await page.locator("#charts figure.chart").count(), 4);
    assert.ok((await page.locator("#charts rect").count()) > 10);
  });

  await step("a dropped socket does not lose a result", async () => {
    // Dropped after the request was accepted: the result arrives after
    // the reconnect's re-subscribe.
    await page.evaluate(() => document.querySelector("#charts").replaceChildren());
    await page.getByRole("button", { name: "Report on these results" }).click();
    await page.locator("#report-status", { hasText: /queued|processing|completed/ }).waitFor(WAIT);
    await page.evaluate(() => window.__directory.dropSocket());
    await page.locator("#report-status", { hasText: "completed" }).waitFor(WAIT);
    assert.equal(await page.locator("#charts figure.chart").count(), 4);
    // Dropped before the request was sent: it goes out on the reconnect.
    await page.evaluate(() => {
      window.__directory.dropSocket();
      document.querySelector("#charts").replaceChildren();
    });
    await page.getByRole("button", { name: "Report on these results" }).click();
    await page.locator("#report-status", { hasText: "completed" }).waitFor(WAIT);
    assert.equal(await page.locator("#charts figure.chart").count(), 4);
  });

  await page.locator("#charts").scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(SHOTS, "report.png"), fullPage: true });

  await step("an import shows progress and its rejections", async () => {
    const dir = mkdtempSync(join(tmpdir(), "import-"));
    const file = join(dir, "people.jsonl");
    const lines = [];
    for (let i = 1; i <= 2500; i++) {
      lines.push(JSON.stringify({ id: `web${i}`, first_name: "Imported", last_name: `Person${i}`, nationality: "Testish", hobbies: ["Chess"] }));
    }
    lines[9] = "{not json";
    lines[1499] = JSON.stringify({ id: "webbad", first_name: "", last_name: "X", nationality: "Testish", hobbies: [] });
    lines[2499] = JSON.stringify({ id: "webbad2", first_name: "A", last_name: "B", nationality: "Testish", hobbies: ["x", "x"] });
    writeFileSync(file, lines.join("\n") + "\n");
    await page.locator("#import-file").setInputFiles(file);
    await page.getByRole("button", { name: "Import" }).click();
    await page.locator("#import-status", { hasText: "Imported" }).waitFor({ timeout: 60000 });
    assert.match(await page.locator("#import-status").innerText(), /Imported 2,497 people; 3 lines rejected/);
    const progress = await page.locator("#import-progress").evaluate((p) => [p.value, p.max]);
    assert.deepEqual(progress, [2499, 2499]);
    const rejected = await page.locator("#import-rejected li").allInnerTexts();
    assert.equal(rejected.length, 3);
    assert.match(rejected[0], /^line 10: /);
    assert.match(rejected[1], /^line 1500: first_name/);
    assert.match(rejected[2], /^line 2500: hobbies/);
    assert.equal((await apiGet("/people?nationality=Testish&page_size=1")).total, 2497);
  });

  await page.screenshot({ path: join(SHOTS, "import.png"), fullPage: false });

  await step("an edit shows the new name once it is searchable", async () => {
    // One of the people just imported: "person1234" matches nobody else.
    await page.goto(BASE + "/?search=person1234");
    await waitForTotal(page, 1);
    await page.getByRole("button", { name: "Edit Imported Person1234" }).click();
    const dialog = page.getByRole("dialog", { name: "Edit person" });
    await dialog.getByLabel("First name").fill("Zebulon");
    await dialog.getByLabel("Hobbies (comma-separated)").fill("Chess, Sailing");
    await dialog.getByRole("button", { name: "Save" }).click();
    await dialog.waitFor({ state: "hidden", ...WAIT });
    // The table the page shows after the save has the new name.
    await page.locator("#people tbody tr", { hasText: "Zebulon" }).waitFor(WAIT);
    const row = await page.locator("#people tbody tr").first().innerText();
    assert.match(row, /Person1234\s+Zebulon\s+Testish\s+Chess, Sailing/);
    assert.equal(await shownTotal(page), 1);
    // And a search for the new name finds them: the write is searchable.
    await page.getByRole("searchbox", { name: "Search by name" }).fill("zebulon person");
    await waitForTotal(page, (await apiGet("/people?search=zebulon+person&page_size=1")).total);
    assert.equal(await shownTotal(page), 1);
    assert.equal((await apiGet("/people/web1234")).first_name, "Zebulon");
  });

  await step("a delete removes the person and the total drops by one", async () => {
    const before = (await apiGet("/people?page_size=1")).total;
    await page.getByRole("button", { name: "Edit Zebulon Person1234" }).click();
    const dialog = page.getByRole("dialog", { name: "Edit person" });
    await dialog.getByRole("button", { name: "Delete" }).click();
    await dialog.waitFor({ state: "hidden", ...WAIT });
    await waitForTotal(page, 0);
    assert.equal(await page.locator("#people tbody").innerText(), "Nobody matches.");
    assert.equal((await fetch(BASE + "/people/web1234")).status, 404);
    await page.getByRole("searchbox", { name: "Search by name" }).fill("");
    await waitForTotal(page, before - 1);
    assert.equal(await shownTotal(page), before - 1);
  });

  await step("an API error is shown in words", async () => {
    await page.goto(BASE + "/?cursor=not-a-cursor");
    await page.locator("#error").waitFor({ state: "visible", ...WAIT });
    assert.match(await page.locator("#error").innerText(), /cursor is not one this API issued/);
  });

  await step("readable on a phone-sized window, usable by keyboard", async () => {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const p = await phone.newPage();
    await p.goto(BASE + "/?search=ma");
    await waitForTotal(p, (await apiGet("/people?search=ma&page_size=1")).total);
    const overflow = await p.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `no horizontal scrolling (${overflow} px)`);
    await p.screenshot({ path: join(SHOTS, "phone.png"), fullPage: false });
    // Tab from the top reaches the search box, and typing there searches.
    await p.keyboard.press("Tab");
    const focused = await p.evaluate(() => document.activeElement.id);
    assert.equal(focused, "search");
    await p.keyboard.press("End");
    await p.keyboard.type("r");
    await waitForTotal(p, (await apiGet("/people?search=mar&page_size=1")).total);
    await phone.close();
  });

  await step("with a token issuer: sign in, 401 and 403 in words, the token on the socket", async () => {
    await withIssuer(async (jwtBase, jwt) => {
      // A new context: nothing signed in, nothing in session storage.
      const signed = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const p = await signed.newPage();
      p.on("pageerror", (e) => pageErrors.push(e.message));
      await p.goto(jwtBase + "/");
      await p.locator("#error", { hasText: "needs you to sign in (401 Unauthorized)" }).waitFor(WAIT);
      await p.locator("#socket-state", { hasText: "could not connect" }).waitFor(WAIT);

      // A token that may read: the table, the socket and a report work.
      const reader = jwt({ sub: "reader", scope: "people:read" });
      await p.getByLabel("Access token").fill(reader);
      await p.getByRole("button", { name: "Sign in" }).click();
      await waitForTotal(p, 2000);
      await p.locator("#error").waitFor({ state: "hidden", ...WAIT });
      await p.locator("#socket-state", { hasText: "connected" }).waitFor(WAIT);
      assert.equal(await p.evaluate(() => sessionStorage.getItem("directory.token")), reader);
      assert.ok(!p.url().includes("token") && !p.url().includes(reader.slice(0, 20)), "no token in the URL");
      await p.getByRole("searchbox", { name: "Search by name" }).fill("ma");
      await p.waitForURL(/search=ma/, WAIT);
      assert.ok(!p.url().includes("token"), "no token in the URL state");
      await p.getByRole("button", { name: "Report on these results" }).click();
      await p.locator("#report-status", { hasText: "completed" }).waitFor(WAIT);
      assert.equal(await p.locator("#charts figure.chart").count(), 4);

      // Writing needs people:write: the 403 is said in words.
      await p.locator("#people tbody tr").first().getByRole("button", { name: /^Edit / }).click();
      const dialog = p.getByRole("dialog", { name: "Edit person" });
      await dialog.getByLabel("Last name").fill("Writeless");
      await dialog.getByRole("button", { name: "Save" }).click();
      await dialog.locator("#edit-error", { hasText: "not allowed to do this (403 Forbidden)" }).waitFor(WAIT);
      assert.match(await dialog.locator("#edit-error").innerText(), /people:write/);
      await dialog.getByRole("button", { name: "Cancel" }).click();

      // A token that may write: the edit goes through and shows.
      await p.getByLabel("Access token").fill(jwt({ sub: "writer", scope: "people:read people:write" }));
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.locator("#socket-state", { hasText: "connected" }).waitFor(WAIT);
      await p.locator("#people tbody tr").first().getByRole("button", { name: /^Edit / }).click();
      await dialog.getByLabel("First name").fill("Signedin");
      await dialog.getByRole("button", { name: "Save" }).click();
      await dialog.waitFor({ state: "hidden", ...WAIT });
      await p.getByRole("searchbox", { name: "Search by name" }).fill("signedin");
      await waitForTotal(p, 1);
      await p.locator("#people tbody tr", { hasText: "Signedin" }).waitFor(WAIT);

      // A token the issuer did not sign: refused, and said so.
      await p.getByLabel("Access token").fill(reader.slice(0, -4) + "AAAA");
      await p.getByRole("button", { name: "Sign in" }).click();
      await p.locator("#error", { hasText: "refused your access token (401 Unauthorized)" }).waitFor(WAIT);
      await p.screenshot({ path: join(SHOTS, "signin.png"), fullPage: true });
      // Signing out forgets the token.
      await p.getByRole("button", { name: "Sign out" }).click();
      await p.locator("#error", { hasText: "needs you to sign in" }).waitFor(WAIT);
      assert.equal(await p.evaluate(() => sessionStorage.getItem("directory.token")), null);
      await signed.close();
    });
  });

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log("browser test: all passed");
} finally {
  await browser.close();
}

// A token issuer on 127.0.0.1 (OpenID Connect discovery and a key set of one
// RSA key), and a second local server (LOCAL_BIN) that demands its tokens
// (--jwt-issuer), stopped by its PID afterwards. `fn` gets that server's
// base URL and a signer of tokens with the given claims.
async function withIssuer(fn) {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const key = { ...publicKey.export({ format: "jwk" }), kid: "browser-test", alg: "RS256", use: "sig" };
  let issuer = "";
  const idp = createServer((req, res) => {
    const body =
      req.url === "/.well-known/openid-configuration"
        ? { issuer, jwks_uri: `${issuer}jwks.json` }
        : req.url === "/jwks.json"
          ? { keys: [key] }
          : null;
    res.writeHead(body ? 200 : 404, { "content-type": "application/json" });
    res.end(JSON.stringify(body || {}));
  });
  await new Promise((resolve) => idp.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${idp.address().port}/`;
  const audience = "people-directory";
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const jwt = (claims) => {
    const now = Math.floor(Date.now() / 1000);
    const head = b64({ alg: "RS256", kid: key.kid, typ: "JWT" });
    const body = b64({ iss: issuer, aud: audience, iat: now, exp: now + 3600, ...claims });
    const sig = cryptoSign("sha256", Buffer.from(`${head}.${body}`), privateKey).toString("base64url");
    return `${head}.${body}.${sig}`;
  };
  const server = spawn(
    LOCAL_BIN,
    ["--bind", "127.0.0.1", "--port", "0", "--people", "2000", "--jwt-issuer", issuer, "--jwt-audience", audience],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  try {
    const base = await new Promise((resolve, reject) => {
      let log = "";
      const timer = setTimeout(() => reject(new Error(`the token-demanding server did not start:\n${log}`)), 60000);
      server.stderr.on("data", (chunk) => {
        log += chunk;
        // The whole line: a chunk may end inside the address.
        const m = log.match(/listening on (http:\/\/\S+) .*\n/);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
      server.on("exit", (code) => reject(new Error(`the token-demanding server stopped (${code}):\n${log}`)));
    });
    await fn(base, jwt);
  } finally {
    const exited = new Promise((resolve) => server.once("exit", resolve));
    process.kill(server.pid, "SIGTERM");
    await exited;
    await new Promise((resolve) => idp.close(resolve));
  }
}
