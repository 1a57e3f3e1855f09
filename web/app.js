// The directory's page: plain ES module, no build step, no dependencies.
// State lives in the URL (search, filters, cursor), so a search can be
// shared and the back button works.

const PAGE_SIZE = 20;
const FACET_LIMIT = 10;
const DEBOUNCE_MS = 150;
const IMPORT_CHUNK = 1000;

const $ = (sel) => document.querySelector(sel);

// ---------- API ----------

class ApiError extends Error {}

// The access token, where the directory is deployed with a token issuer:
// kept in this tab's session storage only, never in the URL (whose query
// is the shareable search state).
const TOKEN_KEY = "directory.token";

function token() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

function withToken(options) {
  const t = token();
  if (!t) return options;
  return { ...options, headers: { ...(options.headers || {}), authorization: `Bearer ${t}` } };
}

// 401 and 403 in words. API Gateway's own answers are {"message": ...};
// the API's are {"error": {...}}.
function refusal(status, body) {
  const own = body && body.error && body.error.message;
  if (status === 401) {
    return token()
      ? "The server refused your access token (401 Unauthorized): it may have expired or be for another issuer. Sign in again with a new one (Sign in, below)."
      : "The server needs you to sign in (401 Unauthorized): paste an access token under Sign in, below.";
  }
  return `You are not allowed to do this (403 Forbidden): ${own || "your access token does not carry the scope this needs"}.`;
}

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, withToken(options));
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError("Cannot reach the server. Check that it is running and try again.");
  }
  const text = await response.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = null;
  }
  if (response.status === 401 || response.status === 403) {
    throw new ApiError(refusal(response.status, body));
  }
  if (!response.ok) {
    const err = body && body.error;
    const message = err
      ? err.message + (err.parameter ? ` (parameter: ${err.parameter})` : "")
      : `The server answered ${response.status} ${response.statusText}.`;
    throw new ApiError(message);
  }
  return body;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

// ---------- state <-> URL ----------

function readState() {
  const p = new URLSearchParams(location.search);
  const list = (key) => p.getAll(key).flatMap((v) => v.split(",")).filter(Boolean);
  return {
    search: p.get("search") || "",
    nationality: list("nationality"),
    hobbies: list("hobbies"),
    hobbies_match: p.get("hobbies_match") === "all" ? "all" : "any",
    typos: p.get("typos") === "1",
    cursor: p.get("cursor") || "",
  };
}

function stateQuery(state, extra = {}) {
  const p = new URLSearchParams();
  if (state.search) p.set("search", state.search);
  for (const v of state.nationality) p.append("nationality", v);
  for (const v of state.hobbies) p.append("hobbies", v);
  if (state.hobbies_match === "all") p.set("hobbies_match", "all");
  if (state.typos) p.set("typos", "1");
  if (state.cursor) p.set("cursor", state.cursor);
  for (const [k, v] of Object.entries(extra)) p.set(k, v);
  return p;
}

let state = readState();
// Cursors of the pages before this one, for "Previous" (kept in history.state).
let before = (history.state && history.state.before) || [];

function pushState(replace = false) {
  const qs = stateQuery(state).toString();
  const url = qs ? `?${qs}` : location.pathname;
  const entry = { before };
  if (replace) history.replaceState(entry, "", url);
  else history.pushState(entry, "", url);
}

function renderForm() {
  $("#search").value = state.search;
  for (const r of document.querySelectorAll('input[name="hobbies_match"]')) {
    r.checked = r.value === state.hobbies_match;
  }
  $("#typos").checked = state.typos;
}

// ---------- search ----------

let latest = 0; // id of the newest request: older answers are dropped
let inflight = null;

async function search() {
  const id = ++latest;
  if (inflight) inflight.abort();
  inflight = new AbortController();
  const signal = inflight.signal;
  const extra = { facets: "nationality,hobbies", facet_limit: FACET_LIMIT, highlight: 1, page_size: PAGE_SIZE };
  try {
    let page = await api(`/people?${stateQuery(state, extra)}`, { signal });
    let approximate = null;
    // Nobody matches exactly: try again tolerating typos ("did you mean").
    if (id === latest && page.total === 0 && !state.typos && state.search.trim()) {
      const retry = await api(`/people?${stateQuery({ ...state, cursor: "", typos: true }, extra)}`, { signal });
      if (retry.total > 0) {
        page = retry;
        approximate = retry.approximate || [];
      }
    }
    if (id !== latest) return; // a newer search has been sent since
    showError("");
    render(page, approximate);
  } catch (e) {
    if (e.name === "AbortError" || id !== latest) return;
    showError(e.message);
  }
}

let timer = null;
function searchSoon() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    pushState();
    search();
  }, DEBOUNCE_MS);
}

function marked(text, ranges) {
  const frag = document.createDocumentFragment();
  let at = 0;
  for (const [start, end] of ranges || []) {
    if (start > at) frag.append(text.slice(at, start));
    const m = document.createElement("mark");
    m.textContent = text.slice(start, end);
    frag.append(m);
    at = end;
  }
  frag.append(text.slice(at));
  return frag;
}

let lastPage = null;

function render(page, approximate) {
  lastPage = page;
  const n = page.total;
  $("#total").textContent = `${n.toLocaleString("en")} ${n === 1 ? "person" : "people"}`;
  const dym = $("#did-you-mean");
  if (approximate && approximate.length) {
    dym.replaceChildren("No exact match. Did you mean ");
    approximate.forEach((a, i) => {
      if (i > 0) dym.append(", ");
      const b = document.createElement("button");
      b.type = "button";
      b.className = "link";
      b.textContent = a.matched[0];
      b.addEventListener("click", () => {
        state.search = state.search.split(/\s+/).map((w) => (foldWord(w) === a.word ? a.matched[0] : w)).join(" ");
        state.cursor = "";
        before = [];
        renderForm();
        pushState();
        search();
      });
      dym.append(b);
    });
    dym.append("? Showing approximate matches.");
    dym.hidden = false;
  } else {
    dym.hidden = true;
  }
  const tbody = $("#people tbody");
  tbody.replaceChildren();
  for (const p of page.items) {
    const tr = document.createElement("tr");
    const h = p.highlight || {};
    const cells = [marked(p.last_name, h.last_name), marked(p.first_name, h.first_name), p.nationality, p.hobbies.join(", ")];
    for (const c of cells) {
      const td = document.createElement("td");
      td.append(c);
      tr.append(td);
    }
    const td = document.createElement("td");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", `Edit ${p.first_name} ${p.last_name}`);
    edit.addEventListener("click", () => openEditor(p));
    td.append(edit);
    tr.append(td);
    tbody.append(tr);
  }
  if (page.items.length === 0) {
    const tr = document.createElement("tr");
    const td = document.createElement("td");
    td.colSpan = 5;
    td.textContent = "Nobody matches.";
    tr.append(td);
    tbody.append(tr);
  }
  const number = before.length + 1;
  const pages = Math.max(1, Math.ceil(n / PAGE_SIZE));
  $("#page-label").textContent = `Page ${number} of ${pages.toLocaleString("en")}`;
  $("#prev").disabled = before.length === 0;
  $("#next").disabled = !page.next_cursor;
  renderFacet($("#facet-nationality"), (page.facets || {}).nationality || [], state.nationality);
  renderFacet($("#facet-hobbies"), (page.facets || {}).hobbies || [], state.hobbies);
}

// Folding as the API does it, near enough to map a suggestion back to the word typed.
function foldWord(w) {
  return w.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
}

function renderFacet(ul, values, selected) {
  const param = ul.dataset.param;
  ul.replaceChildren();
  for (const { value, count } of values) {
    const li = document.createElement("li");
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = value;
    box.checked = selected.includes(value);
    box.addEventListener("change", () => {
      const list = state[param];
      state[param] = box.checked ? [...list, value] : list.filter((v) => v !== value);
      state.cursor = "";
      before = [];
      pushState();
      search();
    });
    const count_ = document.createElement("span");
    count_.className = "count";
    count_.textContent = count.toLocaleString("en");
    label.append(box, ` ${value} `, count_);
    li.append(label);
    ul.append(li);
  }
}

// ---------- WebSocket: reports, live ----------

class Socket {
  constructor(url) {
    this.url = url;
    this.ws = null;
    this.retry = 0;
    // client_ref -> {frame, id?, onEvent}: requests not yet finished.
    this.pending = new Map();
    this.connect();
  }

  connect() {
    const t = token();
    // Browsers cannot set headers on a WebSocket: the token goes in the
    // query string, as the $connect authorizer reads it.
    const url = t ? `${this.url}${this.url.includes("?") ? "&" : "?"}token=${encodeURIComponent(t)}` : this.url;
    const ws = new WebSocket(url);
    this.ws = ws;
    let opened = false;
    setSocketState("connecting…");
    ws.addEventListener("open", () => {
      opened = true;
      this.retry = 0;
      setSocketState("connected");
      // Re-subscribe to what was asked: a result that finished while the
      // socket was down is pushed at once on subscribe.
      for (const p of this.pending.values()) {
        if (p.id) ws.send(JSON.stringify({ action: "subscribe", request_id: p.id }));
        else ws.send(JSON.stringify(p.frame));
      }
    });
    ws.addEventListener("message", (ev) => this.onMessage(ev.data));
    ws.addEventListener("close", () => {
      if (this.ws !== ws) return;
      // A refused $connect (401/403) looks like any failed connection to
      // a page: say what it may be.
      setSocketState(
        opened
          ? "disconnected, reconnecting…"
          : token()
            ? "could not connect; the server may have refused your access token (sign in again). Retrying…"
            : "could not connect; if this server needs a sign-in, sign in below. Retrying…",
      );
      const delay = Math.min(5000, 200 * 2 ** this.retry++);
      this.timer = setTimeout(() => this.connect(), delay);
    });
  }

  // Drops the connection (the browser test uses it to check that a result is not lost).
  drop() {
    if (this.ws) this.ws.close();
  }

  // Connects again at once (a new token: the connection is authorized when it opens).
  reconnect() {
    const old = this.ws;
    clearTimeout(this.timer);
    this.retry = 0;
    this.connect();
    if (old) old.close();
  }

  process(request, onEvent) {
    const ref = crypto.randomUUID();
    // The idempotency key makes a re-send after a drop the same request.
    const frame = { action: "process", request, client_ref: ref, idempotency_key: ref };
    this.pending.set(ref, { frame, onEvent });
    if (this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  onMessage(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    const byId = (id) => [...this.pending.entries()].find(([, p]) => p.id === id);
    if (msg.type === "accepted") {
      const p = this.pending.get(msg.client_ref);
      if (p) {
        p.id = msg.id;
        p.onEvent({ status: "queued" });
      }
    } else if (msg.type === "process-status") {
      const hit = byId(msg.id);
      if (hit) hit[1].onEvent({ status: msg.status, progress: msg.progress });
    } else if (msg.type === "process-result") {
      const hit = byId(msg.id);
      if (!hit) return; // a duplicate delivery: the first one counted
      this.pending.delete(hit[0]);
      hit[1].onEvent({ status: msg.status, result: msg.result, result_url: msg.result_url, error: msg.error });
    } else if (msg.type === "error") {
      const p = msg.client_ref && this.pending.get(msg.client_ref);
      if (p) {
        this.pending.delete(msg.client_ref);
        p.onEvent({ status: "failed", error: msg });
      } else {
        showError(`The socket refused a message: ${msg.message}`);
      }
    }
  }
}

function setSocketState(text) {
  $("#socket-state").textContent = `Socket: ${text}`;
}

const wsParam = new URLSearchParams(location.search).get("ws");
const socket = new Socket(wsParam || `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);

function reportFilter() {
  return {
    search: state.search,
    nationality: state.nationality,
    hobbies: state.hobbies,
    hobbies_match: state.hobbies_match,
    typos: state.typos,
  };
}

$("#report-button").addEventListener("click", () => {
  const status = $("#report-status");
  status.textContent = "Report: sending…";
  $("#charts").replaceChildren();
  socket.process({ kind: "report", filter: reportFilter() }, async (ev) => {
    if (ev.status === "queued" || ev.status === "processing") {
      status.textContent = `Report: ${ev.status}`;
      return;
    }
    if (ev.status === "completed") {
      let result = ev.result;
      try {
        if (!result && ev.result_url) result = (await api(ev.result_url)).result;
        status.textContent = `Report: completed (${result.total.toLocaleString("en")} people)`;
        drawCharts(result);
      } catch (e) {
        status.textContent = `Report: completed, but the result could not be read: ${e.message}`;
      }
    } else {
      const err = ev.error || {};
      status.textContent = `Report: failed: ${err.message || "unknown error"}`;
    }
  });
});

// ---------- charts (SVG, no library) ----------

const SVG = "http://www.w3.org/2000/svg";

function svgEl(name, attrs) {
  const el = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  return el;
}

function barChart(title, rows) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  const rowH = 22;
  const labelW = 170;
  const width = 460;
  const max = Math.max(1, ...rows.map((r) => r.count));
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${rows.length * rowH + 4}`, role: "img" });
  svg.setAttribute("aria-label", `${title}: ${rows.map((r) => `${r.label} ${r.count}`).join(", ")}`);
  rows.forEach((r, i) => {
    const y = i * rowH + 2;
    const label = svgEl("text", { x: labelW - 6, y: y + 15, "text-anchor": "end", class: "label" });
    label.textContent = r.label;
    const w = ((width - labelW - 60) * r.count) / max;
    const bar = svgEl("rect", { x: labelW, y: y + 3, width: Math.max(1, w), height: rowH - 6, class: "bar" });
    const value = svgEl("text", { x: labelW + w + 4, y: y + 15, class: "value" });
    value.textContent = r.count.toLocaleString("en");
    svg.append(label, bar, value);
  });
  fig.append(cap, svg);
  return fig;
}

function histogram(title, counts) {
  const fig = document.createElement("figure");
  fig.className = "chart";
  const cap = document.createElement("figcaption");
  cap.textContent = title;
  const width = 460;
  const height = 180;
  const max = Math.max(1, ...counts);
  const bw = (width - 20) / Math.max(1, counts.length);
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height + 20}`, role: "img" });
  svg.setAttribute("aria-label", `${title}: ${counts.map((c, k) => `${k} hobbies: ${c}`).join(", ")}`);
  counts.forEach((c, k) => {
    const h = ((height - 20) * c) / max;
    svg.append(svgEl("rect", { x: 10 + k * bw + 2, y: height - h, width: Math.max(1, bw - 4), height: h, class: "bar" }));
    const t = svgEl("text", { x: 10 + k * bw + bw / 2, y: height + 15, "text-anchor": "middle", class: "label" });
    t.textContent = String(k);
    svg.append(t);
  });
  fig.append(cap, svg);
  return fig;
}

function drawCharts(r) {
  const charts = $("#charts");
  charts.replaceChildren(
    barChart("Top nationalities", r.top_nationalities.map((v) => ({ label: v.value, count: v.count }))),
    barChart("Top hobbies", r.top_hobbies.map((v) => ({ label: v.value, count: v.count }))),
    barChart("Top hobby pairs", r.top_hobby_pairs.map((v) => ({ label: v.hobbies.join(" + "), count: v.count }))),
    histogram("Hobbies per person", r.hobbies_per_person),
  );
}

// ---------- import ----------

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(id) {
  for (;;) {
    const r = await api(`/requests/${encodeURIComponent(id)}`);
    if (r.status === "completed" || r.status === "failed") return r;
    await sleep(250);
  }
}

$("#import-button").addEventListener("click", async () => {
  const file = $("#import-file").files[0];
  const status = $("#import-status");
  const rejectedList = $("#import-rejected");
  const progress = $("#import-progress");
  rejectedList.replaceChildren();
  if (!file) {
    status.textContent = "Pick a file first.";
    return;
  }
  const rejected = [];
  const people = []; // [lineNumber, person]
  (await file.text()).split(/\r?\n/).forEach((line, i) => {
    if (!line.trim()) return;
    try {
      const p = JSON.parse(line);
      if (p === null || typeof p !== "object" || Array.isArray(p)) throw new Error();
      people.push([i + 1, p]);
    } catch {
      rejected.push([i + 1, "not a JSON object"]);
    }
  });
  const chunks = Math.ceil(people.length / IMPORT_CHUNK);
  progress.hidden = false;
  progress.max = Math.max(1, people.length);
  progress.value = 0;
  let accepted = 0;
  $("#import-button").disabled = true;
  try {
    for (let c = 0; c < chunks; c++) {
      const part = people.slice(c * IMPORT_CHUNK, (c + 1) * IMPORT_CHUNK);
      status.textContent = `Importing: request ${c + 1} of ${chunks}…`;
      const submitted = await api("/requests", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ kind: "import", people: part.map(([, p]) => p) }),
      });
      const done = await waitFor(submitted.id);
      if (done.status === "failed") throw new ApiError(`request ${c + 1} failed: ${(done.error && done.error.message) || "unknown error"}`);
      accepted += done.result.accepted;
      for (const r of done.result.rejected) rejected.push([part[r.index][0], r.reason]);
      progress.value = Math.min(people.length, (c + 1) * IMPORT_CHUNK);
    }
    status.textContent = `Imported ${accepted.toLocaleString("en")} people; ${rejected.length} line${rejected.length === 1 ? "" : "s"} rejected.`;
  } catch (e) {
    status.textContent = `Import stopped: ${e.message}`;
  } finally {
    $("#import-button").disabled = false;
  }
  rejected.sort((a, b) => a[0] - b[0]);
  for (const [line, reason] of rejected) {
    const li = document.createElement("li");
    li.textContent = `line ${line}: ${reason}`;
    rejectedList.append(li);
  }
  search();
});

// ---------- edit and delete ----------

function openEditor(p) {
  const f = $("#edit-form");
  f.id.value = p.id;
  f.first_name.value = p.first_name;
  f.last_name.value = p.last_name;
  f.nationality.value = p.nationality;
  f.hobbies.value = p.hobbies.join(", ");
  $("#edit-error").textContent = "";
  $("#edit-dialog").showModal();
}

$("#edit-form").addEventListener("submit", async (ev) => {
  const action = ev.submitter && ev.submitter.value;
  if (action === "cancel") return;
  ev.preventDefault();
  const f = ev.target;
  const id = f.id.value;
  try {
    if (action === "delete") {
      await api(`/people/${encodeURIComponent(id)}`, { method: "DELETE" });
    } else {
      const person = {
        id,
        first_name: f.first_name.value.trim(),
        last_name: f.last_name.value.trim(),
        nationality: f.nationality.value.trim(),
        hobbies: f.hobbies.value.split(",").map((h) => h.trim()).filter(Boolean),
      };
      await api(`/people/${encodeURIComponent(id)}`, {
        method: "PUT",
        headers: { "content-type": "application/json" },
        body: JSON.stringify(person),
      });
    }
    $("#edit-dialog").close();
    search();
  } catch (e) {
    $("#edit-error").textContent = e.message;
  }
});

// ---------- sign in ----------

function renderSignin() {
  const signedIn = Boolean(token());
  $("#signin-status").textContent = signedIn ? "Signed in: your access token is sent with every request." : "Not signed in.";
  $("#signout-button").hidden = !signedIn;
}

$("#signin-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const value = $("#token").value.trim();
  if (!value) {
    $("#signin-status").textContent = "Paste an access token first.";
    return;
  }
  try {
    sessionStorage.setItem(TOKEN_KEY, value);
  } catch {
    $("#signin-status").textContent = "This browser does not let the page keep a token (session storage is off).";
    return;
  }
  $("#token").value = "";
  renderSignin();
  socket.reconnect();
  search();
});

$("#signout-button").addEventListener("click", () => {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // nothing kept, nothing to remove
  }
  renderSignin();
  socket.reconnect();
  search();
});

// ---------- wiring ----------

$("#search-form").addEventListener("submit", (ev) => ev.preventDefault());
$("#search").addEventListener("input", (ev) => {
  state.search = ev.target.value;
  state.cursor = "";
  before = [];
  searchSoon();
});
for (const r of document.querySelectorAll('input[name="hobbies_match"]')) {
  r.addEventListener("change", () => {
    state.hobbies_match = r.value;
    state.cursor = "";
    before = [];
    pushState();
    search();
  });
}
$("#typos").addEventListener("change", (ev) => {
  state.typos = ev.target.checked;
  state.cursor = "";
  before = [];
  pushState();
  search();
});
$("#next").addEventListener("click", () => {
  if (!lastPage || !lastPage.next_cursor) return;
  before = [...before, state.cursor];
  state.cursor = lastPage.next_cursor;
  pushState();
  search();
});
$("#prev").addEventListener("click", () => {
  if (before.length === 0) return;
  state.cursor = before[before.length - 1];
  before = before.slice(0, -1);
  pushState();
  search();
});
window.addEventListener("popstate", (ev) => {
  state = readState();
  before = (ev.state && ev.state.before) || [];
  renderForm();
  search();
});

window.__directory = { dropSocket: () => socket.drop() };
renderSignin();
renderForm();
search();
