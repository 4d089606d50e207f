// A small typed clustergraph client: urql for queries and mutations over
// HTTP, graphql-ws for subscriptions (and for the terminal's input, which
// must travel on the websocket that opened the session), and documents
// typed by graphql-codegen's client preset (src/gql/, made by
// `npm run build` from ../../schema.graphqls).
//
// It checks, and exits non-zero with a message on any mismatch:
//  0. a websocket with a refused token fails with 4403, and is not retried;
//  1. a paged list: pods(first, after) followed by pageInfo.endCursor to the
//     end, every pod seen once, as many as totalCount says;
//  2. a watch: watch(kind: "Pod") in a namespace sees a pod this client
//     creates (apply) go ADDED and Running, and later DELETED;
//  3. a terminal session in that pod: a shell, a command typed in with
//     terminalInput, its output and exit code 0.
//
//   node dist/main.js --url http://127.0.0.1:8080/ --token "$TOKEN"
//   (or CLUSTERGRAPH_URL, CLUSTERGRAPH_TOKEN; --help for the rest)

import { parseArgs } from "node:util";
import { randomBytes } from "node:crypto";
import { Client, fetchExchange, subscriptionExchange, type AnyVariables, type OperationResult } from "@urql/core";
import { createClient, type Client as WSClient } from "graphql-ws";
import WebSocket from "ws";

import { graphql } from "./gql/index.js";
import type { PodWatchSubscription, PodsPageQuery, TerminalSubscription } from "./gql/graphql.js";

const usage = `usage: node dist/main.js [options]
  --url URL           clustergraph, e.g. http://127.0.0.1:8080/ (or /query); env CLUSTERGRAPH_URL
  --token TOKEN       bearer token; env CLUSTERGRAPH_TOKEN
  --list-namespace NS namespace of the paged list (default shop)
  --page-size N       first: per page (default 2)
  --max-pages N       stop paging after N pages, which is a failure (default 100)
  --namespace NS      namespace for the watch and the test pod (default default)
  --cluster NAME      cluster for the test pod (default the first READY or PARTIAL one)
  --timeout SECONDS   for each wait (default 60)`;

class Mismatch extends Error {}

function fail(message: string): never {
  throw new Mismatch(message);
}

const { values: opts } = parseArgs({
  options: {
    url: { type: "string", default: process.env.CLUSTERGRAPH_URL ?? "" },
    token: { type: "string", default: process.env.CLUSTERGRAPH_TOKEN ?? "" },
    "list-namespace": { type: "string", default: "shop" },
    "page-size": { type: "string", default: "2" },
    "max-pages": { type: "string", default: "100" },
    namespace: { type: "string", default: "default" },
    cluster: { type: "string", default: "" },
    timeout: { type: "string", default: "60" },
    help: { type: "boolean", default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log(usage);
  process.exit(0);
}
if (!opts.url || !opts.token) {
  console.error(`--url and --token (or CLUSTERGRAPH_URL and CLUSTERGRAPH_TOKEN) are required\n${usage}`);
  process.exit(2);
}
const pageSize = positive("page-size", opts["page-size"]);
const maxPages = positive("max-pages", opts["max-pages"]);
const timeoutMs = positive("timeout", opts.timeout) * 1000;

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) {
    console.error(`--${name}: want a positive integer, got ${JSON.stringify(v)}`);
    process.exit(2);
  }
  return n;
}

// http://host:port/ or http://host:port/query -> both endpoints.
const httpURL = new URL(opts.url);
if (!httpURL.pathname.endsWith("/query")) {
  httpURL.pathname = httpURL.pathname.replace(/\/?$/, "/query");
}
const wsURL = new URL(httpURL);
wsURL.protocol = httpURL.protocol === "https:" ? "wss:" : "ws:";
const authorization = `Bearer ${opts.token}`;

// One websocket for every subscription, and for the mutations that must go
// on it: the server reads the token from connection_init's Authorization.
const ws: WSClient = createClient({
  url: wsURL.href,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: authorization },
  lazy: true,
  retryAttempts: 0,
});

const client = new Client({
  url: httpURL.href,
  fetchOptions: { headers: { Authorization: authorization } },
  preferGetMethod: false,
  requestPolicy: "network-only",
  exchanges: [
    subscriptionExchange({
      // Subscriptions, and operations asked for with { socket: true }.
      isSubscriptionOperation: (op) => op.kind === "subscription" || op.context["socket"] === true,
      forwardSubscription: (request) => ({
        subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
      }),
    }),
    fetchExchange,
  ],
});

// The data of a result, or a failure naming the operation and its errors.
// A socket closed under a subscription reaches urql as a CloseEvent, which
// its message would show as "[Network] undefined".
function data<D, V extends AnyVariables>(what: string, r: OperationResult<D, V>): D {
  if (r.error) {
    const network: unknown = r.error.networkError;
    fail(`${what}: ${network !== undefined && !(network instanceof Error) ? describe(network) : r.error.message}`);
  }
  if (r.data === undefined) {
    fail(`${what}: no data`);
  }
  return r.data;
}

// What a failure was, for errors that are not Errors (graphql-ws gives
// CloseEvents).
function describe(e: unknown): string {
  if (typeof e === "object" && e !== null && "code" in e) {
    const reason = "reason" in e ? ` ${String(e.reason)}` : "";
    return `websocket closed: ${String(e.code)}${reason}`;
  }
  return String(e);
}

// Waits for a graphql-ws dispose, which rejects with the close of a socket
// the server already closed: nothing to do then.
async function quietly(p: void | Promise<void>): Promise<void> {
  try {
    await p;
  } catch {
    // already closed
  }
}

function log(message: string): void {
  console.log(`[typescript-client] ${message}`);
}

// ---------------------------------------------------------------- documents

const Clusters = graphql(`
  query Clusters {
    clusters {
      name
      status {
        state
      }
    }
  }
`);

const PodsPage = graphql(`
  query PodsPage($namespace: String!, $first: Int!, $after: String) {
    pods(filter: { namespace: $namespace }, first: $first, after: $after) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        id
        name
        namespace
        phase
        cluster {
          name
        }
        metadata {
          generation
        }
      }
    }
  }
`);

const PodWatch = graphql(`
  subscription PodWatch($namespace: String!, $clusters: [String!]) {
    watch(kind: "Pod", namespace: $namespace, clusters: $clusters) {
      type
      cursor
      cluster {
        name
      }
      object {
        __typename
        id
        metadata {
          name
        }
        ... on Pod {
          phase
          ready
        }
      }
      error {
        code
        message
      }
    }
  }
`);

const Apply = graphql(`
  mutation Apply($cluster: String!, $namespace: String!, $manifest: String!) {
    apply(cluster: $cluster, namespace: $namespace, manifest: $manifest) {
      succeeded
      results {
        action
        object {
          id
        }
        error {
          code
          message
        }
      }
    }
  }
`);

const Delete = graphql(`
  mutation Delete($id: ID!) {
    delete(id: $id, gracePeriodSeconds: 0) {
      gone
    }
  }
`);

const Terminal = graphql(`
  subscription Terminal($cluster: String!, $namespace: String!, $pod: String!) {
    terminal(cluster: $cluster, namespace: $namespace, pod: $pod, command: ["/bin/sh"], tty: false) {
      session
      type
      data
      exitCode
      error
    }
  }
`);

const TerminalInput = graphql(`
  mutation TerminalInput($session: ID!, $data: String!) {
    terminalInput(session: $session, data: $data)
  }
`);

// ------------------------------------------------------------------ helpers

// A queue of a subscription's results: next() waits for the following one.
class Stream<D> {
  private items: Array<OperationResult<D, AnyVariables>> = [];
  private waiting: ((r: OperationResult<D, AnyVariables>) => void) | undefined;
  private readonly unsubscribe: () => void;

  constructor(
    readonly what: string,
    source: { subscribe(f: (r: OperationResult<D, AnyVariables>) => void): { unsubscribe(): void } },
  ) {
    this.unsubscribe = source.subscribe((r) => {
      const w = this.waiting;
      if (w) {
        this.waiting = undefined;
        w(r);
      } else {
        this.items.push(r);
      }
    }).unsubscribe;
  }

  async next(): Promise<D> {
    const r =
      this.items.shift() ??
      (await new Promise<OperationResult<D, AnyVariables>>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.waiting = undefined;
          reject(new Mismatch(`${this.what}: nothing within ${timeoutMs / 1000}s`));
        }, timeoutMs);
        this.waiting = (r) => {
          clearTimeout(timer);
          resolve(r);
        };
      }));
    return data(this.what, r);
  }

  close(): void {
    this.unsubscribe();
  }
}

type WatchEvent = PodWatchSubscription["watch"];

// Reads the watch until an event satisfies want; fails on ENDED.
async function until(watch: Stream<PodWatchSubscription>, what: string, want: (e: WatchEvent) => boolean): Promise<WatchEvent> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (Date.now() > deadline) {
      fail(`watch: no ${what} within ${timeoutMs / 1000}s`);
    }
    const e = (await watch.next()).watch;
    if (e.type === "ENDED") {
      fail(`watch ended: ${e.error?.code ?? "?"} ${e.error?.message ?? ""}`);
    }
    if (want(e)) {
      return e;
    }
  }
}

// ------------------------------------------------------------------- checks

// 1. Every page of pods(filter: {namespace}) after the previous endCursor.
async function pagedList(): Promise<void> {
  const ns = opts["list-namespace"];
  const seen = new Set<string>();
  let after: string | null = null;
  let totalCount = -1;
  let pages = 0;
  for (;;) {
    if (pages === maxPages) {
      fail(`pods in ${ns}: still hasNextPage after ${maxPages} pages of ${pageSize}`);
    }
    const page: PodsPageQuery["pods"] = data(
      `pods page ${pages + 1}`,
      await client.query(PodsPage, { namespace: ns, first: pageSize, after }).toPromise(),
    ).pods;
    pages++;
    if (totalCount >= 0 && page.totalCount !== totalCount) {
      fail(`pods in ${ns}: totalCount changed from ${totalCount} to ${page.totalCount} while paging`);
    }
    totalCount = page.totalCount;
    if (page.nodes.length > pageSize) {
      fail(`pods in ${ns}: page ${pages} has ${page.nodes.length} pods, asked for ${pageSize}`);
    }
    for (const pod of page.nodes) {
      if (pod.namespace !== ns) {
        fail(`pods in ${ns}: got ${pod.cluster.name}/${pod.namespace}/${pod.name}`);
      }
      if (seen.has(pod.id)) {
        fail(`pods in ${ns}: ${pod.cluster.name}/${pod.name} on two pages`);
      }
      // Int64 arrives as a JSON number (see codegen.ts).
      if (typeof pod.metadata.generation !== "number") {
        fail(`pods in ${ns}: metadata.generation is ${typeof pod.metadata.generation}, want number`);
      }
      seen.add(pod.id);
    }
    if (!page.pageInfo.hasNextPage) {
      break;
    }
    if (page.nodes.length === 0 || !page.pageInfo.endCursor) {
      fail(`pods in ${ns}: hasNextPage on page ${pages} but no endCursor to go on from`);
    }
    after = page.pageInfo.endCursor;
  }
  if (seen.size !== totalCount) {
    fail(`pods in ${ns}: saw ${seen.size} pods in ${pages} pages, totalCount says ${totalCount}`);
  }
  if (totalCount === 0) {
    fail(`pods in ${ns}: none; the check needs a seeded namespace (--list-namespace)`);
  }
  log(`list: ${totalCount} pods in ${ns} over ${pages} pages of ${pageSize}, each once, totalCount matches`);
}

// 0. A socket with a refused token: the subscription fails at once with
// 4403 (Forbidden). After a normal closure graphql-ws would reconnect with
// the same token, again and again, as long as the subscription is wanted.
async function refusedToken(): Promise<void> {
  const refused = createClient({
    url: wsURL.href,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: "Bearer not-a-token" },
    lazy: true,
    retryAttempts: 0,
  });
  let connects = 0;
  refused.on("connecting", () => connects++);
  try {
    const code = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Mismatch(`refused token: no error within 10s, ${connects} connects`)), 10_000);
      refused.subscribe(
        { query: `subscription { watch(kind: "Pod") { type } }` },
        {
          next: () => reject(new Mismatch("refused token: the watch sent data")),
          error: (e: unknown) => {
            clearTimeout(timer);
            resolve(typeof e === "object" && e !== null && "code" in e && typeof e.code === "number" ? e.code : -1);
          },
          complete: () => reject(new Mismatch("refused token: the watch completed")),
        },
      );
    });
    if (code !== 4403 || connects !== 1) {
      fail(`refused token: socket closed with ${code} after ${connects} connects, want 4403 after 1`);
    }
    log("refused token: the websocket closed with 4403 Forbidden, no reconnect");
  } finally {
    await quietly(refused.dispose());
  }
}

// 2 and 3. A pod of our own, seen by the watch, with a terminal in it.
async function watchAndTerminal(): Promise<void> {
  const clusters = data("clusters", await client.query(Clusters, {}).toPromise()).clusters;
  // PARTIAL: some kind is not served, most likely not pods.
  const cluster = opts.cluster || clusters.find((c) => c.status.state === "READY" || c.status.state === "PARTIAL")?.name;
  if (!cluster) {
    fail(`no READY or PARTIAL cluster among ${clusters.map((c) => `${c.name} (${c.status.state})`).join(", ")}`);
  }
  const ns = opts.namespace;
  const name = `ts-client-${randomBytes(4).toString("hex")}`;

  const watch = new Stream("watch", client.subscription(PodWatch, { namespace: ns, clusters: [cluster] }));
  let podId: string | undefined;
  try {
    // The current state first, then SYNCED: live changes follow.
    let initial = 0;
    await until(watch, "SYNCED", (e) => {
      if (e.type === "ADDED") {
        initial++;
      }
      return e.type === "SYNCED";
    });
    log(`watch: ${initial} pods in ${cluster}/${ns}, then SYNCED`);

    const manifest = JSON.stringify({
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name, labels: { app: "clustergraph-typescript-client" } },
      spec: { containers: [{ name: "main", image: "example/typescript-client:1" }] },
    });
    const applied = data("apply", await client.mutation(Apply, { cluster, namespace: ns, manifest }).toPromise()).apply;
    const result = applied.results[0];
    if (applied.succeeded !== 1 || !result || result.action !== "CREATED" || !result.object) {
      fail(`apply of pod ${name}: ${JSON.stringify(applied)}`);
    }
    podId = result.object.id;
    log(`apply: pod ${cluster}/${ns}/${name} CREATED`);

    const ours = (e: WatchEvent) => e.object?.metadata.name === name && e.cluster.name === cluster;
    const added = await until(watch, `ADDED for ${name}`, ours);
    if (added.type !== "ADDED" || added.object?.id !== podId) {
      fail(`watch: first event for ${name} is ${added.type} of ${added.object?.id}, want ADDED of ${podId}`);
    }
    await until(watch, `${name} Running`, (e) => {
      if (!ours(e)) {
        return false;
      }
      if (e.type === "DELETED") {
        fail(`watch: ${name} DELETED before it ran`);
      }
      return e.object?.__typename === "Pod" && e.object.phase === "Running" && e.object.ready;
    });
    log(`watch: ${name} ADDED, then MODIFIED to Running and ready`);

    await terminal(cluster, ns, name);

    const deleted = data("delete", await client.mutation(Delete, { id: podId }).toPromise()).delete;
    podId = undefined;
    log(`delete: ${name} (gone: ${deleted.gone})`);
    const last = await until(watch, `DELETED for ${name}`, (e) => ours(e) && e.type === "DELETED");
    log(`watch: ${name} DELETED (cursor ${last.cursor.length} characters)`);
  } finally {
    watch.close();
    if (podId) {
      // A failure above: do not leave the pod behind.
      await client.mutation(Delete, { id: podId }).toPromise();
    }
  }
}

// A shell with no TTY: the command is typed in through terminalInput, sent
// on the websocket that opened the session (anywhere else it is refused).
async function terminal(cluster: string, ns: string, pod: string): Promise<void> {
  const term = new Stream("terminal", client.subscription(Terminal, { cluster, namespace: ns, pod }));
  try {
    const frame = async (): Promise<TerminalSubscription["terminal"]> => (await term.next()).terminal;
    const started = await frame();
    if (started.type !== "STARTED" || !started.session) {
      fail(`terminal: first frame ${JSON.stringify(started)}, want STARTED with a session`);
    }
    const marker = `hello from typescript ${randomBytes(3).toString("hex")}`;
    const sent = data(
      "terminalInput",
      await client
        .mutation(TerminalInput, { session: started.session, data: `echo "${marker}"; exit 0\n` }, { socket: true })
        .toPromise(),
    );
    if (!sent.terminalInput) {
      fail("terminalInput answered false");
    }
    let stdout = "";
    let stderr = "";
    for (;;) {
      const f = await frame();
      if (f.session !== started.session) {
        fail(`terminal: frame of session ${f.session} in session ${started.session}`);
      }
      if (f.type === "STDOUT") {
        stdout += f.data ?? "";
      } else if (f.type === "STDERR") {
        stderr += f.data ?? "";
      } else if (f.type === "EXIT") {
        if (f.exitCode !== 0 || f.error) {
          fail(`terminal: exit ${f.exitCode ?? "none"}, error ${f.error ?? "none"}; stdout ${JSON.stringify(stdout)}, stderr ${JSON.stringify(stderr)}`);
        }
        break;
      } else {
        fail(`terminal: unexpected ${f.type} frame`);
      }
    }
    if (!stdout.includes(marker)) {
      fail(`terminal: stdout ${JSON.stringify(stdout)} (stderr ${JSON.stringify(stderr)}), want ${JSON.stringify(marker)}`);
    }
    log(`terminal: session ${started.session.slice(0, 8)}…: typed echo, read ${JSON.stringify(stdout.trim())}, exit 0`);
  } finally {
    term.close();
  }
}

// -------------------------------------------------------------------- main

try {
  await refusedToken();
  await pagedList();
  await watchAndTerminal();
  log("all checks passed");
} catch (e) {
  console.error(`[typescript-client] FAILED: ${e instanceof Error ? e.message : describe(e)}`);
  process.exitCode = 1;
} finally {
  await quietly(ws.dispose());
}
