// Browser check of the GraphiQL page served by graphiql.Handler (not a Go
// test: it needs Chromium). It loads the page, waits for the editor, runs
// `{ __typename }` with the run button and asserts the result pane shows
// "__typename".
//
//   cd graphiql && npm ci && node e2e/check.mjs http://127.0.0.1:8080/ [options]
//
// Options:
//   --auth VALUE          type {"Authorization": VALUE} into the headers
//                         editor first, and assert the HTTP request carried it
//   --subscription QUERY  then run QUERY (a subscription) and assert its
//                         result arrives over the websocket; with --auth, also
//                         assert connection_init carried the header
//   --expect TEXT         text the subscription result must contain
//   --trigger CMD         a shell command to run once the subscription is
//                         running (e.g. create the object a watch must show)
//   --query QUERY         the query to run (default `{ __typename }`)
//   --result TEXT         text its result must contain (may be repeated;
//                         default "__typename")
//   --screenshot FILE     where to save a screenshot (default e2e/graphiql.png)
//
// Uses Debian's Chromium (apt-get install chromium): Playwright's own browser
// downloads are not reachable from where consoles are built.
import { chromium } from "playwright-core";
import { parseArgs } from "node:util";
import { execSync } from "node:child_process";

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    auth: { type: "string" },
    subscription: { type: "string" },
    expect: { type: "string" },
    trigger: { type: "string" },
    query: { type: "string", default: "{ __typename }" },
    result: { type: "string", multiple: true, default: ['"__typename"'] },
    screenshot: { type: "string", default: new URL("graphiql.png", import.meta.url).pathname },
  },
});
const url = positionals[0];
if (!url) {
  console.error("usage: node e2e/check.mjs URL [--auth VALUE] [--subscription QUERY --expect TEXT]");
  process.exit(2);
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
  ],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const problems = [];
page.on("pageerror", (err) => problems.push(`page error: ${err.message}`));
page.on("console", (msg) => msg.type() === "error" && console.log(`console error: ${msg.text()}`));
// Any request leaving the page's origin would fail in an air-gapped cluster.
page.on("request", (req) => {
  const u = new URL(req.url());
  if (!["http:", "https:", "ws:", "wss:"].includes(u.protocol)) return;
  if (u.host !== new URL(url).host) problems.push(`request to another host: ${req.url()}`);
});
const posts = [];
page.on("request", (req) => req.method() === "POST" && posts.push(req));
const wsFrames = [];
page.on("websocket", (ws) => ws.on("framesent", (f) => wsFrames.push(String(f.payload))));

// setEditor replaces the text of a GraphiQL CodeMirror 5 editor through its
// API: typing would fight the editor's bracket auto-closing and hints.
async function setEditor(selector, text) {
  await page.waitForSelector(`${selector} .CodeMirror`, { state: "attached" });
  await page.evaluate(
    ([sel, t]) => document.querySelector(`${sel} .CodeMirror`).CodeMirror.setValue(t),
    [selector, text],
  );
}
const resultText = () =>
  page.evaluate(() => document.querySelector(".graphiql-response .CodeMirror")?.CodeMirror.getValue() ?? "");

async function run(query, expected, trigger) {
  await setEditor(".graphiql-query-editor", query);
  // GraphiQL parses the query (to tell subscriptions from queries) in a
  // debounced change handler: let it catch up, as a human would.
  await page.waitForTimeout(500);
  await page.click(".graphiql-execute-button");
  if (trigger) {
    // Let the subscription start before the change it must show happens.
    await page.waitForTimeout(2000);
    execSync(trigger, { stdio: "inherit" });
  }
  await page.waitForFunction(
    (want) => document.querySelector(".graphiql-response .CodeMirror")?.CodeMirror.getValue().includes(want),
    expected,
    { timeout: 15000 },
  );
}

let ok = false;
try {
  const res = await page.goto(url, { waitUntil: "load" });
  if (!res.ok()) throw new Error(`GET ${url}: HTTP ${res.status()}`);
  await page.waitForSelector(".graphiql-query-editor .CodeMirror", { timeout: 15000 });
  console.log("editor rendered");

  if (opts.auth) {
    await page.getByRole("button", { name: "Headers" }).click();
    // The headers editor is the visible one of the two tool editors.
    await setEditor(".graphiql-editor-tool .graphiql-editor:not(.hidden)", JSON.stringify({ Authorization: opts.auth }));
  }

  posts.length = 0;
  await run(opts.query, opts.result[0]);
  for (const want of opts.result) {
    if (!(await resultText()).includes(want)) throw new Error(`query result lacks ${want}`);
  }
  console.log(`query result: ${(await resultText()).replace(/\s+/g, " ")}`);
  if (opts.auth) {
    const sent = posts.map((r) => r.headers()["authorization"]);
    if (!sent.includes(opts.auth)) throw new Error(`query request lacked the Authorization header (sent: ${sent})`);
    console.log("HTTP request carried the Authorization header");
  }

  if (opts.subscription) {
    await run(opts.subscription, opts.expect || "data", opts.trigger);
    console.log(`subscription result: ${(await resultText()).replace(/\s+/g, " ")}`);
    const init = wsFrames.map((f) => JSON.parse(f)).find((m) => m.type === "connection_init");
    if (!init) throw new Error("no connection_init frame sent");
    // Never print a token: logs outlive it.
    const shown = { ...init.payload };
    if (shown.Authorization) shown.Authorization = shown.Authorization.replace(/ .*/, " <redacted>");
    console.log(`connection_init payload: ${JSON.stringify(shown)}`);
    if (opts.auth && init.payload?.Authorization !== opts.auth) {
      throw new Error("connection_init payload lacked the Authorization header");
    }
  }
  if (problems.length) throw new Error(problems.join("\n"));
  ok = true;
} catch (err) {
  console.error(`FAIL: ${err.message}`);
} finally {
  await page.screenshot({ path: opts.screenshot }).catch(() => {});
  console.log(`screenshot: ${opts.screenshot}`);
  await browser.close();
}
console.log(ok ? "PASS" : "FAIL");
process.exit(ok ? 0 : 1);
