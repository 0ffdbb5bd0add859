// A node LSP client for phi3-lsp over stdio (vscode-jsonrpc), the typing
// replay shared by the editor tests and the editor benchmark, the fleet
// router (deploy/router) in front of a server, and small helpers (Prometheus
// scrape, a generated 300-line source file).
//
// Modules come from clients/lsp/node_modules (NODE_PATH).
"use strict";
const { spawn } = require("child_process");
const fs = require("fs");
const http = require("http");
const net = require("net");
const os = require("os");
const path = require("path");
const rpc = require("vscode-jsonrpc/node");

// Starts `node serverJs --stdio ...args` and initializes it. Everything the
// language server says outside LSP results is kept: window/logMessage and
// window/showMessage in `logs`, its stderr (also passed through) in `stderr`.
async function startLsp(serverJs, args, initializationOptions, { env = process.env, rootUri = "file:///workspace" } = {}) {
  const proc = spawn(process.execPath, [serverJs, "--stdio", ...args],
                     { stdio: ["pipe", "pipe", "pipe"], env });
  const conn = rpc.createMessageConnection(new rpc.StreamMessageReader(proc.stdout),
                                           new rpc.StreamMessageWriter(proc.stdin));
  const lsp = {
    proc, conn, statuses: [], progress: [], logs: [], stderr: "", versions: new Map(), texts: new Map(),
  };
  proc.stderr.on("data", (d) => { lsp.stderr += d; process.stderr.write(d); });
  conn.onNotification("phi3/status", (s) => lsp.statuses.push(s));
  conn.onNotification("window/logMessage", (m) => lsp.logs.push(m.message));
  conn.onNotification("window/showMessage", (m) => lsp.logs.push(m.message));
  // $/progress is dispatched per token by vscode-jsonrpc: watch a token first.
  lsp.watchProgress = (token) => {
    conn.onProgress(new rpc.ProgressType(), token, (value) => lsp.progress.push({ token, value }));
  };
  conn.onRequest("window/workDoneProgress/create", () => null);
  conn.listen();
  const init = await conn.sendRequest("initialize", {
    processId: process.pid, rootUri, capabilities: {
      textDocument: { inlineCompletion: {}, completion: {} }, window: { workDoneProgress: true },
    },
    initializationOptions,
  });
  conn.sendNotification("initialized", {});
  lsp.capabilities = init.capabilities;
  lsp.open = (uri, languageId, text) => {
    lsp.versions.set(uri, 1);
    lsp.texts.set(uri, text);
    conn.sendNotification("textDocument/didOpen",
                          { textDocument: { uri, languageId, version: 1, text } });
  };
  // Replaces [start, end) (offsets) with `text`; returns the new version.
  lsp.edit = (uri, start, end, text) => {
    const old = lsp.texts.get(uri);
    const version = lsp.versions.get(uri) + 1;
    lsp.versions.set(uri, version);
    lsp.texts.set(uri, old.slice(0, start) + text + old.slice(end));
    conn.sendNotification("textDocument/didChange", {
      textDocument: { uri, version },
      contentChanges: [{ range: { start: positionAt(old, start), end: positionAt(old, end) }, text }],
    });
    return version;
  };
  lsp.request = (method, uri, offset, token) => {
    const params = {
      textDocument: { uri }, position: positionAt(lsp.texts.get(uri), offset),
      context: { triggerKind: 2 },
    };
    return token ? conn.sendRequest(method, params, token) : conn.sendRequest(method, params);
  };
  lsp.lastStatus = () => lsp.statuses[lsp.statuses.length - 1];
  lsp.stop = async () => {
    try {
      await withTimeout(conn.sendRequest("shutdown"), 5000);
      conn.sendNotification("exit");
    } catch (e) {
      // fall through to the kill
    }
    await new Promise((r) => { proc.once("exit", r); setTimeout(() => { proc.kill("SIGKILL"); r(); }, 3000); });
    conn.dispose();
  };
  return lsp;
}

function positionAt(text, offset) {
  let line = 0;
  let lineStart = 0;
  for (let i = 0; i < offset; ++i) {
    if (text.charCodeAt(i) === 10) { ++line; lineStart = i + 1; }
  }
  return { line, character: offset - lineStart };
}

function withTimeout(promise, ms, what = "operation") {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms); }),
  ]);
}

async function waitFor(predicate, ms, what) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return;
    await sleep(10);
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

// GET http://address/metrics -> { "name{labels}": value }.
function scrape(address) {
  return new Promise((resolve, reject) => {
    http.get(`http://${address}/metrics`, { agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => { body += d; });
      res.on("end", () => {
        const out = {};
        for (const line of body.split("\n")) {
          if (!line || line.startsWith("#")) continue;
          const i = line.lastIndexOf(" ");
          out[line.slice(0, i)] = Number(line.slice(i + 1));
        }
        resolve(out);
      });
    }).on("error", reject);
  });
}

// Sum of the series of `name` whose labels contain every string of `must`.
function metric(metrics, name, must = []) {
  let sum = 0;
  for (const [key, value] of Object.entries(metrics)) {
    const base = key.includes("{") ? key.slice(0, key.indexOf("{")) : key;
    if (base === name && must.every((m) => key.includes(m))) sum += value;
  }
  return sum;
}

// A free TCP port on 127.0.0.1 (closed again; the caller binds it soon).
function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The fleet router (deploy/router/haproxy.cfg, HAProxy) in front of one
// server at `backend` on free loopback ports. `lines` collects its per-call
// log (one line when a call ends: `key="ROUTE KEY" path=.../phi3.v1.Phi3/METHOD
// ...`). HAProxy is started under `setpriv --pdeathsig KILL`, so it also
// ends if this process is killed. Resolves once the router reports the
// replica up (/healthz), within 20 s.
async function startRouter(haproxy, backend) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "phi3-router-"));
  const servers = path.join(dir, "servers.cfg");
  fs.writeFileSync(servers, `backend phi3 from phi3\n  server replica0 ${backend}\n`);
  const [port, metricsPort] = [await freePort(), await freePort()];
  const config = path.join(__dirname, "..", "..", "deploy", "router", "haproxy.cfg");
  const proc = spawn("setpriv", ["--pdeathsig", "KILL", "--", haproxy, "-db", "-f", config, "-f", servers], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PHI3_ROUTER_LISTEN: `127.0.0.1:${port}`,
           PHI3_ROUTER_METRICS_LISTEN: `127.0.0.1:${metricsPort}` },
  });
  const router = { addr: `127.0.0.1:${port}`, lines: [], output: "", exited: null };
  let partial = "";
  proc.stdout.on("data", (d) => {
    partial += d;
    const parts = partial.split("\n");
    partial = parts.pop();
    router.lines.push(...parts.filter((l) => l.includes(" path=")));
  });
  proc.stderr.on("data", (d) => { router.output += d; });
  proc.on("exit", (code) => { router.exited = code; });
  router.stop = async () => {
    if (router.exited === null) {
      proc.kill("SIGTERM");
      await new Promise((r) => { proc.once("exit", r); setTimeout(() => { proc.kill("SIGKILL"); r(); }, 5000); });
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitFor(async () => {
      if (router.exited !== null) throw new Error(`haproxy exited (${router.exited}): ${router.output}`);
      return await new Promise((resolve) => {
        http.get(`http://127.0.0.1:${metricsPort}/healthz`, { agent: false }, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        }).on("error", () => resolve(false));
      });
    }, 20000, "the router's /healthz");
  } catch (e) {
    await router.stop();
    throw e;
  }
  return router;
}

// A deterministic C++-like source file of `numLines` lines.
function sourceFile(numLines) {
  const lines = ["#include <cstdint>", "#include <vector>", "", "namespace demo {", ""];
  let f = 0;
  while (lines.length < numLines - 1) {
    lines.push(`// Returns the weighted sum number ${f} of the values.`);
    lines.push(`int64_t WeightedSum${f}(const std::vector<int64_t>& values, int64_t weight) {`);
    lines.push("  int64_t total = 0;");
    lines.push("  for (int64_t v : values) {");
    lines.push(`    total += v * weight + ${f};`);
    lines.push("  }");
    lines.push("  return total;");
    lines.push("}");
    lines.push("");
    ++f;
  }
  lines.length = numLines - 1;
  lines.push("}  // namespace demo");
  return lines.join("\n") + "\n";
}

// The recorded session: `numKeys` keystrokes typing a new function at
// `line` of `text` (a pause, i.e. an awaited completion, after each line and
// every `pauseEvery` characters), as [{ offset, insert, pause }].
function typingSession(text, line, numKeys, pauseEvery) {
  const body = [
    "// Returns the product of the values, each one plus the bias.",
    "int64_t BiasedProduct(const std::vector<int64_t>& values, int64_t bias) {",
    "  int64_t product = 1;",
    "  for (int64_t v : values) {",
    "    product *= v + bias;",
    "  }",
    "  return product;",
    "}",
    "",
  ].join("\n");
  let offset = 0;
  for (let i = 0; i < line; ++i) offset = text.indexOf("\n", offset) + 1;
  const keys = [];
  for (let i = 0; i < numKeys; ++i) {
    const c = body[i % body.length];
    keys.push({ offset: offset + i, insert: c, pause: c === "\n" || (i + 1) % pauseEvery === 0 });
  }
  return keys;
}

// Replays `keys` into `uri`: each keystroke is a didChange then an
// inlineCompletion request, not awaited (as an editor does), except at
// pauses. An answer is applied (accepted, then undone so the replay goes on)
// only at a pause and only if the document did not change meanwhile.
// Returns per-request records and counts.
async function replay(lsp, uri, keys, { keyIntervalMs = 0, method = "textDocument/inlineCompletion" } = {}) {
  const records = [];
  const pending = [];
  for (const key of keys) {
    const version = lsp.edit(uri, key.offset, key.offset, key.insert);
    const offset = key.offset + key.insert.length;
    const sent = Date.now();
    const record = { version, sent, answered: null, items: 0, stale: false, applied: false, ms: 0 };
    records.push(record);
    const p = lsp.request(method, uri, offset).then((r) => {
      record.ms = Date.now() - sent;
      const items = r === null ? [] : (Array.isArray(r) ? r : r.items);
      record.answered = r !== null;
      record.items = items.length;
      record.stale = lsp.versions.get(uri) !== version;
      record.text = items.length ? (items[0].insertText ?? items[0].textEdit?.newText ?? "") : "";
      return record;
    });
    pending.push(p);
    if (key.pause) {
      await p;
      if (record.items > 0 && !record.stale && record.text.length > 0) {
        // Accept, check, undo: the text is inserted as offered.
        const before = lsp.texts.get(uri);
        lsp.edit(uri, offset, offset, record.text);
        record.applied = lsp.texts.get(uri) === before.slice(0, offset) + record.text + before.slice(offset);
        lsp.edit(uri, offset, offset + record.text.length, "");
      }
    } else if (keyIntervalMs > 0) {
      await sleep(keyIntervalMs);
    }
  }
  await Promise.all(pending);
  return records;
}

module.exports = {
  startLsp, positionAt, withTimeout, waitFor, sleep, scrape, metric, freePort, startRouter,
  sourceFile, typingSession, replay,
};
