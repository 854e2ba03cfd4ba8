// pipeline-4 for LangGraph.js: the peer that bench/compare.sh measures conveyor against.
//
// The same four stages as conveyor's demo bank agent (deploy/config/bank-agent.yaml), as a
// LangGraph StateGraph compiled with the PostgreSQL checkpointer: intent -> gather -> decide ->
// respond, one fresh thread per request, served by Node's own `http` module:
//
//   POST /v1/requests {"user_id": "cust-1", "text": "..."}
//        -> 200 {request_id, status, user_id, intent, evidence, decision, reply, timings}
//   GET  /healthz -> 200 {"ok": true}
//
// Environment:
//   PEER_DATABASE_URL      PostgreSQL URL (the same database as conveyor's; demo bank in `bank`)
//   PEER_HTTP_PORT         port on 127.0.0.1 (default 8090)
//   PEER_HTTP_HOST         address to listen on (default 127.0.0.1)
//   PEER_DURABILITY        LangGraph durability: sync (default, as conveyor's default), async, exit
//   PEER_CHECKPOINT_SCHEMA schema of the checkpointer's tables (default langgraph: conveyor's own
//                          `public.checkpoints` table has the same name as the checkpointer's)
//   PEER_TOOLS_POOL        connections for the SQL tools (default 10, pg's default)
//   PEER_CHECKPOINT_POOL   connections for the checkpointer (default 10, pg's default)
import http from "node:http";
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";

import pg from "pg";
import { Annotation, END, START, StateGraph } from "@langchain/langgraph";
import { PostgresSaver } from "@langchain/langgraph-checkpoint-postgres";

const databaseUrl = process.env.PEER_DATABASE_URL;
const port = intSetting("PEER_HTTP_PORT", 8090, 1, 65535);
const host = process.env.PEER_HTTP_HOST || "127.0.0.1";
const durability = process.env.PEER_DURABILITY || "sync";
const checkpointSchema = process.env.PEER_CHECKPOINT_SCHEMA || "langgraph";
const toolsPoolSize = intSetting("PEER_TOOLS_POOL", 10, 1, 1000);
const checkpointPoolSize = intSetting("PEER_CHECKPOINT_POOL", 10, 1, 1000);

const MAX_BODY = 64 * 1024;
const MAX_TEXT = 2000;

function intSetting(name, fallback, min, max) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max) fail(`${name} must be a whole number ${min}..${max}, not '${raw}'`);
  return value;
}

function fail(message) {
  process.stderr.write(`langgraph-peer: ${message}\n`);
  process.exit(2);
}

if (!databaseUrl) fail("PEER_DATABASE_URL is not set");
if (!["sync", "async", "exit"].includes(durability)) fail(`PEER_DURABILITY must be sync, async or exit, not '${durability}'`);
if (!/^[a-z_][a-z0-9_]*$/.test(checkpointSchema)) fail(`PEER_CHECKPOINT_SCHEMA must be a plain lower-case identifier, not '${checkpointSchema}'`);

// ---------------------------------------------------------------------------------------------
// The agent, as deploy/config/bank-agent.yaml has it for this workload.

// The SQL tools of card_arrival, word for word from the agent file's `tools:` section, with the
// same parameters and row limits. Like conveyor's gatherer, they run read-only.
const TOOLS = {
  customer_profile: {
    query: `SELECT c.name, split_part(c.name, ' ', 1) AS first_name, c.country
  FROM bank.customers c WHERE c.id = $1`,
    params: (state) => [state.user_id],
    timeoutMs: 1000,
    maxRows: 1,
  },
  active_cards: {
    query: `SELECT id, last4, status FROM bank.cards
 WHERE customer_id = $1 AND status = 'active' AND ($2::text IS NULL OR last4 = $2)
 ORDER BY issued_at DESC`,
    params: (state) => [state.user_id, state.intent_result?.slots?.card_last4 ?? null],
    timeoutMs: 1000,
    maxRows: 5,
  },
  cards_in_delivery: {
    query: `SELECT id, last4, status, to_char(expected_arrival, 'FMDay FMDD FMMonth') AS expected_arrival,
       delivery_tracking
  FROM bank.cards
 WHERE customer_id = $1 AND status IN ('ordered', 'shipped')
 ORDER BY issued_at DESC`,
    params: (state) => [state.user_id],
    timeoutMs: 1000,
    maxRows: 5,
  },
};

// Which tools each intent looks up (the agent file's `intents:` section).
const PLANS = {
  card_arrival: ["customer_profile", "cards_in_delivery", "active_cards"],
  lost_or_stolen_card: ["customer_profile", "active_cards"],
};

// The first policy whose intent and conditions hold decides (the agent file's `policies:`).
// has_rows: every tool named succeeded with at least one row.
const POLICIES = [
  { name: "lost_card_freeze", intent: "lost_or_stolen_card", hasRows: ["active_cards"], outcome: "freeze_card",
    reason: "a card reported lost or stolen is frozen at once",
    actions: [{ kind: "freeze_card", params: { card_id: "{{evidence.active_cards.0.id}}", last4: "{{evidence.active_cards.0.last4}}" } }] },
  { name: "card_on_its_way_card_in_use", intent: "card_arrival", hasRows: ["cards_in_delivery", "active_cards"], outcome: "answer" },
  { name: "card_on_its_way", intent: "card_arrival", hasRows: ["cards_in_delivery"], outcome: "answer" },
  { name: "handoff", outcome: "handoff", reason: "nothing more specific applies; a colleague takes over" },
];

// The replies (the agent file's `templates:`, folded as YAML's `>-` folds them).
const TEMPLATES = {
  lost_card_freeze:
    "I'm sorry to hear that, {{evidence.customer_profile.0.first_name}}. I've frozen your card ending " +
    "{{evidence.active_cards.0.last4}} so nobody can use it. You can order a replacement in the app under Cards.",
  card_on_its_way_card_in_use:
    "Your new card ending {{evidence.cards_in_delivery.0.last4}} is on its way and should arrive by " +
    "{{evidence.cards_in_delivery.0.expected_arrival}}. Tracking number: " +
    "{{evidence.cards_in_delivery.0.delivery_tracking}}. Until it comes, your card ending " +
    "{{evidence.active_cards.0.last4}} works as before.",
  card_on_its_way:
    "Your new card ending {{evidence.cards_in_delivery.0.last4}} is on its way and should arrive by " +
    "{{evidence.cards_in_delivery.0.expected_arrival}}. Tracking number: " +
    "{{evidence.cards_in_delivery.0.delivery_tracking}}.",
  handoff:
    "Thanks for your message. I can't answer this one reliably myself; a colleague can: contact us " +
    "under Help in the app.",
  fallback: "Thanks for your message. I can't answer it here; a colleague can: contact us under Help in the app.",
};

// Intent: a small deterministic keyword function. It cannot run conveyor's classifier (a linear
// model trained in C on Banking77, with calibrated confidence); a couple of regular expressions
// cost far less than the model's n-gram features and 77-way scoring, so this stage favours the peer.
function classify(text) {
  const card_last4 = /\bending(?: in)? (\d{4})\b/i.exec(text)?.[1];
  const slots = card_last4 ? { card_last4 } : {};
  if (/\bcard\b/i.test(text) && /\b(arriv\w*|deliver\w*|come|came|receiv\w*|post|mail|new card|still|where is my)\b/i.test(text))
    return { name: "card_arrival", confidence: 1, method: "keyword", slots };
  if (/\b(lost|stolen)\b/i.test(text) && /\bcard\b/i.test(text))
    return { name: "lost_or_stolen_card", confidence: 1, method: "keyword", slots };
  return { name: "unknown", confidence: 0, method: "keyword", slots: {} };
}

// {{a.b.0.c}} -> the value at that path of `context`, or undefined.
function lookup(context, path) {
  let value = context;
  for (const key of path.split(".")) {
    if (value === null || value === undefined) return undefined;
    value = value[key];
  }
  return value;
}

// Fills a template; null when a placeholder has no value (the responder then tries the next one).
function render(template, context) {
  let missing = false;
  const text = template.replace(/\{\{\s*([a-zA-Z0-9_.]+)\s*\}\}/g, (_, path) => {
    const value = lookup(context, path);
    if (value === null || value === undefined || value === "") {
      missing = true;
      return "";
    }
    return String(value);
  });
  return missing ? null : text;
}

// The context templates and policies read: evidence.TOOL is the tool's rows.
function contextOf(state) {
  const evidence = {};
  for (const tool of state.evidence?.tools ?? []) if (tool.status === "ok") evidence[tool.tool] = tool.rows;
  return { user_id: state.user_id, text: state.text, intent: state.intent_result, evidence };
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL: one pool for the tools (read-only sessions), one for the checkpointer.

const toolsPool = new pg.Pool({
  connectionString: databaseUrl,
  max: toolsPoolSize,
  idleTimeoutMillis: 0, // connections stay open between runs, as conveyor's do
  application_name: "langgraph-peer-tools",
  options: "-c default_transaction_read_only=on",
});
const checkpointPool = new pg.Pool({
  connectionString: databaseUrl,
  max: checkpointPoolSize,
  idleTimeoutMillis: 0,
  application_name: "langgraph-peer-checkpoints",
});
for (const pool of [toolsPool, checkpointPool])
  pool.on("error", (err) => process.stderr.write(`langgraph-peer: idle PostgreSQL connection failed: ${err.message}\n`));

async function runTool(name, state) {
  const tool = TOOLS[name];
  const started = performance.now();
  try {
    const result = await toolsPool.query({ text: tool.query, values: tool.params(state), query_timeout: tool.timeoutMs });
    const rows = result.rows.slice(0, tool.maxRows);
    return { tool: name, status: "ok", rows, elapsed_ms: round(performance.now() - started) };
  } catch (err) {
    // A failed tool is reported in the evidence, not fatal, as in conveyor's gatherer.
    const timedOut = /timeout/i.test(err.message);
    return { tool: name, status: timedOut ? "timed_out" : "failed", rows: [], error: err.message,
             elapsed_ms: round(performance.now() - started) };
  }
}

function round(ms) {
  return Math.round(ms * 1000) / 1000;
}

// ---------------------------------------------------------------------------------------------
// The graph.

const State = Annotation.Root({
  request_id: Annotation(),
  user_id: Annotation(),
  text: Annotation(),
  // The intent stage's result; a channel cannot share its name with the node `intent`.
  intent_result: Annotation(),
  evidence: Annotation(),
  decision: Annotation(),
  reply: Annotation(),
  timings: Annotation({ reducer: (a, b) => ({ ...a, ...b }), default: () => ({}) }),
});

async function intentNode(state) {
  const started = performance.now();
  const intent = classify(state.text);
  return { intent_result: intent, timings: { intent: round(performance.now() - started) } };
}

async function gatherNode(state) {
  const started = performance.now();
  const plan = PLANS[state.intent_result.name] ?? [];
  const tools = await Promise.all(plan.map((name) => runTool(name, state)));
  return { evidence: { tools }, timings: { gather: round(performance.now() - started) } };
}

async function decideNode(state) {
  const started = performance.now();
  const context = contextOf(state);
  const ok = (name) => Array.isArray(context.evidence[name]) && context.evidence[name].length > 0;
  const policy = POLICIES.find((p) => (!p.intent || p.intent === state.intent_result.name) && (p.hasRows ?? []).every(ok));
  const actions = (policy.actions ?? []).map((action) => ({
    kind: action.kind,
    params: Object.fromEntries(Object.entries(action.params).map(([k, v]) => [k, render(v, context) ?? ""])),
  }));
  const decision = { outcome: policy.outcome, rule: policy.name, reason: policy.reason ?? "", actions };
  return { decision, timings: { decide: round(performance.now() - started) } };
}

async function respondNode(state) {
  const started = performance.now();
  const context = { ...contextOf(state), decision: state.decision };
  let reply = null;
  for (const name of [state.decision.rule, state.decision.outcome, "fallback"]) {
    const text = TEMPLATES[name] !== undefined ? render(TEMPLATES[name], context) : null;
    if (text !== null) {
      reply = { text, template: name };
      break;
    }
  }
  return { reply, timings: { respond: round(performance.now() - started) } };
}

const checkpointer = new PostgresSaver(checkpointPool, undefined, { schema: checkpointSchema });

const graph = new StateGraph(State)
  .addNode("intent", intentNode)
  .addNode("gather", gatherNode)
  .addNode("decide", decideNode)
  .addNode("respond", respondNode)
  .addEdge(START, "intent")
  .addEdge("intent", "gather")
  .addEdge("gather", "decide")
  .addEdge("decide", "respond")
  .addEdge("respond", END)
  .compile({ checkpointer });

// ---------------------------------------------------------------------------------------------
// HTTP.

function send(res, status, body, extraHeaders = {}) {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    "Content-Type": "application/json",
    "Content-Length": Buffer.byteLength(payload),
    ...extraHeaders,
  });
  res.end(payload);
}

function sendError(res, status, code, message, extraHeaders) {
  send(res, status, { error: { code, message } }, extraHeaders);
}

class BadRequest extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers["content-length"]);
    if (Number.isFinite(declared) && declared > MAX_BODY) {
      reject(new BadRequest(413, "body_too_large", `the body is over ${MAX_BODY} bytes`));
      req.resume();
      return;
    }
    const chunks = [];
    let size = 0;
    let refused = false;
    req.on("data", (chunk) => {
      if (refused) return;
      size += chunk.length;
      if (size > MAX_BODY) {
        refused = true;
        reject(new BadRequest(413, "body_too_large", `the body is over ${MAX_BODY} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on("end", () => refused || resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseRequest(body) {
  let text;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(body);
  } catch {
    throw new BadRequest(400, "invalid_utf8", "the body is not valid UTF-8");
  }
  let doc;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new BadRequest(400, "invalid_json", "the body is not JSON");
  }
  if (doc === null || typeof doc !== "object" || Array.isArray(doc))
    throw new BadRequest(400, "invalid_request", "the body must be a JSON object");
  for (const key of Object.keys(doc))
    if (key !== "user_id" && key !== "text") throw new BadRequest(400, "unknown_field", `unknown field '${key}'`);
  if (typeof doc.user_id !== "string" || doc.user_id.length === 0 || doc.user_id.length > 128)
    throw new BadRequest(400, "invalid_user_id", "user_id must be a string of 1..128 characters");
  if (typeof doc.text !== "string" || doc.text.length === 0)
    throw new BadRequest(400, "invalid_text", "text must be a non-empty string");
  if (Buffer.byteLength(doc.text) > MAX_TEXT)
    throw new BadRequest(400, "text_too_long", `text is over ${MAX_TEXT} bytes`);
  return { user_id: doc.user_id, text: doc.text };
}

async function handleRequest(req, res) {
  const started = performance.now();
  let input;
  try {
    input = parseRequest(await readBody(req));
  } catch (err) {
    if (err instanceof BadRequest) {
      // After a refused oversized body the connection cannot be reused safely.
      sendError(res, err.status, err.code, err.message, err.status === 413 ? { Connection: "close" } : {});
      return;
    }
    throw err;
  }
  const request_id = `r-${randomUUID()}`;
  let state;
  try {
    state = await graph.invoke({ request_id, ...input }, { configurable: { thread_id: request_id }, durability });
  } catch (err) {
    process.stderr.write(`langgraph-peer: request ${request_id} failed: ${err.stack || err.message}\n`);
    const unavailable = /ECONNREFUSED|ECONNRESET|terminat|timeout|connect/i.test(err.message);
    sendError(res, unavailable ? 503 : 500, unavailable ? "unavailable" : "internal", `the request did not finish: ${err.message}`,
              unavailable ? { "Retry-After": "1" } : {});
    return;
  }
  const evidence = {
    tools: state.evidence.tools.map(({ tool, status, rows, elapsed_ms }) => ({ tool, status, rows: rows.length, elapsed_ms })),
  };
  send(res, 200, {
    request_id,
    status: "done",
    user_id: state.user_id,
    intent: state.intent_result,
    evidence,
    decision: state.decision,
    reply: state.reply,
    timings: { ...state.timings, total: round(performance.now() - started) },
  });
}

let inFlight = 0;
let drained = null; // resolves when the last request in flight is answered, once stopping

const server = http.createServer((req, res) => {
  const path = (req.url ?? "/").split("?")[0];
  if (path === "/v1/requests") {
    if (req.method !== "POST") {
      sendError(res, 405, "method_not_allowed", "use POST", { Allow: "POST" });
      req.resume();
      return;
    }
    inFlight++;
    handleRequest(req, res)
      .catch((err) => {
        process.stderr.write(`langgraph-peer: ${err.stack || err.message}\n`);
        if (!res.headersSent) sendError(res, 500, "internal", err.message);
        else res.destroy();
      })
      .finally(() => {
        if (--inFlight === 0 && drained) drained.resolve();
      });
    return;
  }
  req.resume();
  if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
    send(res, 200, { ok: true });
    return;
  }
  sendError(res, 404, "not_found", `no such path: ${path}`);
});
// Kept-alive connections stay open between a client's requests.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 70_000;

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  process.stderr.write(`langgraph-peer: ${signal}, stopping with ${inFlight} requests in flight\n`);
  // No new connections; requests in flight finish (for at most 5 s) before the pools close.
  server.close();
  server.closeIdleConnections();
  setTimeout(() => {
    process.stderr.write(`langgraph-peer: ${inFlight} requests still in flight after 5 s; exiting\n`);
    process.exit(1);
  }, 5000).unref();
  if (inFlight > 0) {
    let resolve;
    const promise = new Promise((r) => (resolve = r));
    drained = { resolve };
    await promise;
  }
  server.closeAllConnections();
  await Promise.allSettled([toolsPool.end(), checkpointPool.end()]);
  process.stderr.write("langgraph-peer: stopped\n");
  process.exit(0);
}
process.on("SIGTERM", () => stop("SIGTERM"));
process.on("SIGINT", () => stop("SIGINT"));

try {
  await checkpointer.setup();
} catch (err) {
  fail(`cannot set up the checkpointer's tables in schema ${checkpointSchema}: ${err.message}`);
}
server.on("error", (err) => fail(`cannot listen on ${host}:${port}: ${err.message}`));
server.listen(port, host, () => {
  process.stderr.write(
    `langgraph-peer: listening on http://${host}:${port} (durability ${durability}, checkpoints in schema ` +
      `${checkpointSchema}, pools: tools ${toolsPoolSize}, checkpointer ${checkpointPoolSize}; node ${process.version})\n`,
  );
});
