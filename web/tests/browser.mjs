// The page in a real browser: Debian's chromium driven by playwright-core,
// against the local server (BASE_URL, on 127.0.0.1). Asserts what a person
// sees; writes screenshots into docs/screenshots. Run by scripts/browser-test.sh.

import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import { writeFileSync, mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const BASE = process.env.BASE_URL;
const SHOTS = process.env.SCREENSHOTS;
const executablePath = process.env.CHROMIUM;
assert.ok(BASE && SHOTS && executablePath, "BASE_URL, SCREENSHOTS and CHROMIUM are set");
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

  assert.deepEqual(pageErrors, [], "no uncaught errors in the page");
  console.log("browser test: all passed");
} finally {
  await browser.close();
}
