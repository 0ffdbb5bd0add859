// phi3-lsp end to end, driven by a node LSP client over stdio against a real
// phi3-server (started by editor_test.cc on a tiny generated model):
//
//   node lsp_e2e_test.js --server-js clients/lsp/dist/server.js --addr HOST:PORT \
//       --metrics HOST:PORT --proto proto/phi3/v1/phi3.proto
//   (... --only routeKey --haproxy PATH: the route key through the fleet router)
//
// Each check prints "ok NAME" or throws (exit 1).
"use strict";
const assert = require("assert");
const crypto = require("crypto");
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");
const { TextDocument } = require("vscode-languageserver-textdocument");
const { CancellationTokenSource } = require("vscode-jsonrpc/node");
const h = require("./lsp_harness");

function flag(name) {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || i + 1 >= process.argv.length) throw new Error(`--${name} is required`);
  return process.argv[i + 1];
}
const serverJs = flag("server-js");
const addr = flag("addr");
const metricsAddr = flag("metrics");
const lspApi = require(serverJs);  // the bundle exports its prompt and stopping rules

const definition = protoLoader.loadSync(flag("proto"), {
  keepCase: true, enums: String, defaults: true, longs: Number, oneofs: true,
});
const api = grpc.loadPackageDefinition(definition);
const stub = new api.phi3.v1.Phi3(addr, grpc.credentials.createInsecure());

function generate(request) {
  return new Promise((resolve, reject) => {
    let text = "";
    let last = null;
    const call = stub.Generate(request, new grpc.Metadata(), { deadline: new Date(Date.now() + 60000) });
    call.on("data", (m) => { text += m.text; if (m.finish_reason !== "FINISH_REASON_UNSPECIFIED") last = m; });
    call.on("error", reject);
    call.on("end", () => resolve({ text, last }));
  });
}

const fast = { debounceMs: 0, warmup: false, maxTokens: 24, maxLines: 4 };

// Nothing the language server printed (log and show messages, stderr, the
// status notifications' texts) contains `secret`.
function assertNotLogged(lsp, secret) {
  const said = [...lsp.logs, lsp.stderr, ...lsp.statuses.map((s) => s.message)];
  assert.ok(!said.some((l) => l.includes(secret)), `the secret ${JSON.stringify(secret)} was logged`);
}

// 1. The completion is what Generate returns for the same prompt and options
//    (after the documented stopping rules); the prompt has the stable header.
async function completionEqualsGenerate() {
  const secret = "test-secret-key-123";  // sent to a --no-auth server: ignored there
  const lsp = await h.startLsp(serverJs, ["--addr", addr, "--api-key", secret], fast);
  try {
    assert.ok(lsp.capabilities.inlineCompletionProvider, "inlineCompletionProvider");
    assert.ok(lsp.capabilities.completionProvider, "completionProvider");
    const uri = "file:///workspace/src/sum.cc";
    const text = "int Sum(int a, int b) {\n  int s = a + b;\n  ret";
    lsp.open(uri, "cpp", text);
    const offset = text.length;
    const inline = await lsp.request("textDocument/inlineCompletion", uri, offset);
    const doc = TextDocument.create(uri, "cpp", 1, text);
    const site = lspApi.completionSite(doc, h.positionAt(text, offset), { ...lspApi.DEFAULTS, ...fast });
    assert.strictEqual(site.prompt.prompt, `// file: sum.cc (cpp)\n${text}`);
    const g = await generate({
      prompt: site.prompt.prompt, sampling: { temperature: 0 },
      stop: { max_tokens: fast.maxTokens, stop: lspApi.stopStrings(site.ctx) },
    });
    assert.ok(g.last.usage.completion_tokens > 0);
    const expected = lspApi.trimCompletion(g.text, site.ctx, true).text;
    const got = inline.items.length ? inline.items[0].insertText : "";
    assert.strictEqual(got, expected, `inline completion vs Generate (raw ${JSON.stringify(g.text)})`);
    // textDocument/completion: one item replacing the word before the cursor
    // with the word plus the same continuation.
    const list = await lsp.request("textDocument/completion", uri, offset);
    if (expected.length > 0) {
      assert.strictEqual(list.items.length, 1);
      assert.strictEqual(list.items[0].textEdit.newText, "ret" + expected);
      assert.deepStrictEqual(list.items[0].textEdit.range.start, { line: 2, character: 2 });
    }
    // The session status reached the client; no secret in the log.
    await h.waitFor(() => lsp.lastStatus()?.requests >= 2 && lsp.lastStatus().state === "idle", 5000, "status");
    assert.ok(lsp.lastStatus().promptTokens > 0 && lsp.lastStatus().costUsd > 0);
    assert.ok(lsp.logs.some((l) => l.includes('"apiKey":"<set>"')), lsp.logs.join("\n"));
    assertNotLogged(lsp, secret);
    console.log(`ok completion_equals_generate ${JSON.stringify(expected)}`);
  } finally {
    await lsp.stop();
  }
}

// 2. A cancelled completion frees the server's slot at once.
async function cancelFreesTheSlot() {
  const lsp = await h.startLsp(serverJs, ["--addr", addr],
                               { ...fast, contextTokens: 3500, maxTokens: 400 });
  try {
    const uri = "file:///workspace/big.cc";
    const text = h.sourceFile(300) + "int64_t Next";
    lsp.open(uri, "cpp", text);
    const before = await h.scrape(metricsAddr);
    const source = new CancellationTokenSource();
    const answer = lsp.request("textDocument/inlineCompletion", uri, text.length, source.token)
      .then((r) => ({ r }), (e) => ({ e }));
    await h.waitFor(async () => h.metric(await h.scrape(metricsAddr), "phi3_engine_running_requests") > 0,
                    10000, "the completion to run");
    const cancelledAt = Date.now();
    source.cancel();
    const a = await h.withTimeout(answer, 5000, "the cancelled request's answer");
    assert.ok(a.e !== undefined || a.r === null, "a cancelled request answers null or an error");
    await h.waitFor(async () => {
      const m = await h.scrape(metricsAddr);
      return h.metric(m, "phi3_engine_running_requests") === 0 &&
             h.metric(m, "phi3_kv_cache_used_blocks") === 0 &&
             h.metric(m, "phi3_requests_total", ['finish_reason="cancelled"']) >
                 h.metric(before, "phi3_requests_total", ['finish_reason="cancelled"']);
    }, 5000, "the slot to be free");
    console.log(`ok cancel_frees_the_slot in ${Date.now() - cancelledAt} ms`);
  } finally {
    await lsp.stop();
  }
}

// 3. Warm-up: opening a document prefills its prefix; the completion typed
//    after it is served mostly from the prefix cache.
async function warmupGivesCachedTokens() {
  const lsp = await h.startLsp(serverJs, ["--addr", addr],
                               { ...fast, warmup: true, warmupDebounceMs: 0, contextTokens: 1024 });
  try {
    const before = await h.scrape(metricsAddr);
    const uri = "file:///workspace/warm.cc";
    const text = h.sourceFile(40);
    lsp.open(uri, "cpp", text);
    await h.waitFor(() => lsp.lastStatus()?.warmups >= 1 && lsp.lastStatus().state === "idle", 20000, "warm-up");
    const warmed = lsp.lastStatus().promptTokens;
    lsp.edit(uri, text.length, text.length, "int");
    const r = await lsp.request("textDocument/inlineCompletion", uri, text.length + 3);
    assert.ok(r !== null);
    await h.waitFor(() => lsp.lastStatus()?.requests >= 1, 5000, "status");
    const cached = lsp.lastStatus().lastCachedPromptTokens;
    assert.ok(cached >= warmed - 32, `cached ${cached} of ${warmed} warmed tokens`);
    const after = await h.scrape(metricsAddr);
    assert.ok(h.metric(after, "phi3_prefill_requests_total") > h.metric(before, "phi3_prefill_requests_total"));
    console.log(`ok warmup_gives_cached_tokens ${cached}/${warmed}`);
  } finally {
    await lsp.stop();
  }
}

// 4. Typing replay: 200 keystrokes over a 300-line file; every completion is
//    answered or cancelled, none is offered stale, the server ends idle.
async function typingReplay() {
  const lsp = await h.startLsp(serverJs, ["--addr", addr],
                               { debounceMs: 30, warmup: true, warmupDebounceMs: 100, maxTokens: 16,
                                 contextTokens: 768 });
  try {
    const before = await h.scrape(metricsAddr);
    const uri = "file:///workspace/replay.cc";
    const text = h.sourceFile(300);
    lsp.open(uri, "cpp", text);
    const keys = h.typingSession(text, 150, 200, 25);
    const records = await h.withTimeout(h.replay(lsp, uri, keys), 40000, "the replay");
    assert.strictEqual(records.length, 200);
    const answered = records.filter((r) => r.answered).length;
    const cancelled = records.filter((r) => !r.answered).length;
    const stale = records.filter((r) => r.items > 0 && r.stale).length;
    const applied = records.filter((r) => r.applied).length;
    assert.strictEqual(answered + cancelled, 200);
    assert.strictEqual(stale, 0, "completions offered for an outdated document");
    assert.ok(answered >= keys.filter((k) => k.pause).length, "every awaited request is answered");
    assert.ok(cancelled > 100, `latest wins: ${cancelled} cancelled`);
    await h.waitFor(async () => {
      const m = await h.scrape(metricsAddr);
      return h.metric(m, "phi3_engine_running_requests") === 0 &&
             h.metric(m, "phi3_engine_waiting_requests") === 0 &&
             h.metric(m, "phi3_active_streams") === 0 && h.metric(m, "phi3_kv_cache_used_blocks") === 0;
    }, 5000, "the server to be idle");
    const after = await h.scrape(metricsAddr);
    const calls = h.metric(after, "phi3_requests_total") - h.metric(before, "phi3_requests_total");
    assert.ok(calls < 200, `debounced: ${calls} server calls for 200 keystrokes`);
    console.log(`ok typing_replay answered=${answered} cancelled=${cancelled} applied=${applied} calls=${calls}`);
  } finally {
    await lsp.stop();
  }
}

// 4b. The debounce only delays requests within a burst: a request after a
//     pause calls the server at once; one that follows another closely waits
//     debounceMs for a newer one.
async function debounceOnlyWithinBursts() {
  const debounceMs = 400;
  const lsp = await h.startLsp(serverJs, ["--addr", addr], { ...fast, debounceMs, maxTokens: 2 });
  try {
    const uri = "file:///workspace/debounce.py";
    const text = "def f(x):\n    return";
    lsp.open(uri, "python", text);
    await h.sleep(debounceMs);
    const sent = Date.now();
    const alone = await lsp.request("textDocument/inlineCompletion", uri, text.length);
    assert.ok(alone !== null);
    await h.waitFor(() => lsp.lastStatus()?.requests >= 1, 10000, "status");
    const s1 = lsp.lastStatus();
    // Request -> first token minus call -> first token is the wait before
    // the call (without any text: the whole answer came before the debounce).
    const waited = s1.lastFirstTokenMs !== null ? s1.lastFirstTokenMs - s1.lastCallFirstTokenMs
                                                : Date.now() - sent;
    assert.ok(waited < debounceMs / 2, `a request after a pause waited ${waited} ms: ${JSON.stringify(s1)}`);
    // A burst of three: the first (after a pause) calls at once, the second
    // waits and is superseded by the third, which waits debounceMs.
    await h.sleep(debounceMs);
    const first = lsp.request("textDocument/inlineCompletion", uri, text.length);
    await h.sleep(20);
    const second = lsp.request("textDocument/inlineCompletion", uri, text.length);
    await h.sleep(20);
    const t3 = Date.now();
    const third = await lsp.request("textDocument/inlineCompletion", uri, text.length);
    await first;
    assert.strictEqual(await second, null, "the second of a burst is superseded while it waits");
    assert.ok(third !== null);
    assert.ok(Date.now() - t3 >= debounceMs, `the burst's last request did not wait ${debounceMs} ms`);
    console.log("ok debounce_only_within_bursts");
  } finally {
    await lsp.stop();
  }
}

// 5. Explain / fix through Chat, streamed as $/progress.
async function commands() {
  const lsp = await h.startLsp(serverJs, ["--addr", addr], { ...fast, commandMaxTokens: 24 });
  try {
    const uri = "file:///workspace/cmd.py";
    const text = "def add(a, b):\n    return a - b\n";
    lsp.open(uri, "python", text);
    const range = { start: { line: 0, character: 0 }, end: { line: 1, character: 16 } };
    lsp.watchProgress("explain-1");
    const explained = await lsp.conn.sendRequest("workspace/executeCommand",
      { command: "phi3.explain", arguments: [{ uri, range }], workDoneToken: "explain-1" });
    assert.strictEqual(explained.kind, "explanation", JSON.stringify(explained));
    const kinds = lsp.progress.filter((p) => p.token === "explain-1").map((p) => p.value.kind);
    assert.strictEqual(kinds[0], "begin");
    assert.strictEqual(kinds[kinds.length - 1], "end");
    const reports = lsp.progress.filter((p) => p.token === "explain-1" && p.value.kind === "report");
    if (explained.markdown.length > 0) {
      assert.ok(reports.length > 0);
      assert.strictEqual(reports[reports.length - 1].value.message, explained.markdown);
    }
    const fixed = await lsp.conn.sendRequest("workspace/executeCommand",
      { command: "phi3.fix", arguments: [{ uri, range, instruction: "Fix the bug" }] });
    assert.strictEqual(fixed.kind, "edit", JSON.stringify(fixed));
    assert.deepStrictEqual(fixed.edit.changes[uri][0].range, range);
    console.log("ok commands");
  } finally {
    await lsp.stop();
  }
}

// 6. (--only tlsAndApiKey, against a server with TLS and API keys) TLS with a
//    given CA and server name, the key sent, refused when wrong, never logged.
async function tlsAndApiKey() {
  const tls = ["--addr", addr, "--tls", "--ca-cert", flag("ca-cert"), "--tls-server-name", "localhost"];
  const key = flag("api-key");
  for (const [given, ok] of [[key, true], ["wrong-key-456", false]]) {
    const lsp = await h.startLsp(serverJs, [...tls, "--api-key", given, "--route-key", "team/doc-1"], fast);
    try {
      const uri = "file:///workspace/tls.py";
      lsp.open(uri, "python", "def f(x):\n    return");
      const r = await lsp.request("textDocument/inlineCompletion", uri, 21);
      assert.ok(r !== null);
      await h.waitFor(() => lsp.lastStatus()?.requests >= 1, 10000, "status");
      const s = lsp.lastStatus();
      if (ok) {
        assert.strictEqual(s.state, "idle", JSON.stringify(s));
        assert.ok(s.promptTokens > 0);
      } else {
        assert.strictEqual(s.state, "error");
        assert.ok(s.message.startsWith("UNAUTHENTICATED"), s.message);
      }
      assertNotLogged(lsp, given);
    } finally {
      await lsp.stop();
    }
  }
  console.log("ok tls_and_api_key");
}

// 7. (--only routeKey) The route key reaches the fleet router on every call
//    the language server makes: warm-up prefill, inline and plain completion,
//    explain and fix. The real router (deploy/router, HAProxy) runs in front
//    of the test server and logs each call's `x-phi3-route-key`. The key comes
//    from initializationOptions, then from workspace/didChangeConfiguration
//    (the client reconnects), is overridden by --route-key, and when none is
//    set is derived from the workspace root (16 hex digits of its SHA-256).
//    The API key (initializationOptions, then changed by configuration, and
//    $PHI3_API_KEY) is never printed.
async function routeKey() {
  const router = await h.startRouter(flag("haproxy"), addr);
  // Waits until the router has logged `n` more calls than `from`; returns them.
  const nextCalls = async (from, n, what) => {
    await h.waitFor(() => router.lines.length >= from + n, 20000, `${what}: ${n} call(s) in the router's log`);
    await h.sleep(100);  // a stray extra call would show up now
    const got = router.lines.slice(from);
    assert.strictEqual(got.length, n, `${what}: expected ${n} call(s), the router logged:\n${got.join("\n")}`);
    return got;
  };
  const keyOf = (line) => /key="([^"]*)"/.exec(line)?.[1];
  const methodOf = (line) => /path=\S*\/phi3\.v1\.Phi3\/(\w+) /.exec(line)?.[1];
  try {
    const secrets = ["init-secret-5150", "config-secret-6160"];
    const lsp = await h.startLsp(serverJs, ["--addr", router.addr],
                                 { ...fast, warmup: true, warmupDebounceMs: 0, commandMaxTokens: 8,
                                   routeKey: "team-a/doc-7", apiKey: secrets[0] });
    try {
      const uri = "file:///workspace/routed.py";
      const text = "def scale(values, k):\n    out = []\n    for v in values:\n        out.append(";
      lsp.open(uri, "python", text);
      // didOpen warms up (prefill_only Generate): one call.
      await h.waitFor(() => lsp.lastStatus()?.warmups >= 1 && lsp.lastStatus().state === "idle", 20000, "warm-up");
      const calls = await nextCalls(0, 1, "the warm-up");
      await lsp.request("textDocument/inlineCompletion", uri, text.length);
      calls.push(...await nextCalls(1, 1, "the inline completion"));
      await lsp.request("textDocument/completion", uri, text.length);
      calls.push(...await nextCalls(2, 1, "the completion"));
      const range = { start: { line: 0, character: 0 }, end: { line: 3, character: 8 } };
      const explained = await lsp.conn.sendRequest("workspace/executeCommand",
        { command: "phi3.explain", arguments: [{ uri, range }] });
      assert.strictEqual(explained.kind, "explanation", JSON.stringify(explained));
      calls.push(...await nextCalls(3, 1, "phi3.explain"));
      const fixed = await lsp.conn.sendRequest("workspace/executeCommand",
        { command: "phi3.fix", arguments: [{ uri, range }] });
      assert.strictEqual(fixed.kind, "edit", JSON.stringify(fixed));
      calls.push(...await nextCalls(4, 1, "phi3.fix"));
      assert.deepStrictEqual(calls.map(methodOf),
                             ["Generate", "Generate", "Generate", "Chat", "Chat"], calls.join("\n"));
      assert.deepStrictEqual(calls.map(keyOf), Array(5).fill("team-a/doc-7"), calls.join("\n"));
      // A new key by configuration: the client reconnects and sends it.
      lsp.conn.sendNotification("workspace/didChangeConfiguration",
                                { settings: { phi3: { routeKey: "team-a/doc-8", apiKey: secrets[1] } } });
      await lsp.request("textDocument/inlineCompletion", uri, text.length);
      const [changed] = await nextCalls(5, 1, "the completion after a configuration change");
      assert.strictEqual(keyOf(changed), "team-a/doc-8", changed);
      assert.ok(lsp.logs.filter((l) => l.includes('"apiKey":"<set>"')).length >= 2, lsp.logs.join("\n"));
      for (const s of secrets) assertNotLogged(lsp, s);
      for (const s of secrets) assert.ok(!router.lines.some((l) => l.includes(s)), "the API key reached the router's log");
    } finally {
      await lsp.stop();
    }

    // --route-key wins over initializationOptions; no key set: derived from
    // the workspace root. The API key from the environment is never printed.
    const envSecret = "env-secret-7170";
    const root = "file:///home/dev/project-x";
    const derived = crypto.createHash("sha256").update(root).digest("hex").slice(0, 16);
    for (const [args, want] of [[["--route-key", "flag/key-1"], "flag/key-1"], [[], derived]]) {
      const from = router.lines.length;
      const l2 = await h.startLsp(serverJs, ["--addr", router.addr, ...args],
                                  { ...fast, routeKey: args.length ? "init/ignored" : "" },
                                  { rootUri: root, env: { ...process.env, PHI3_API_KEY: envSecret } });
      try {
        const uri = `${root}/a.py`;
        l2.open(uri, "python", "def f(x):\n    return");
        await l2.request("textDocument/inlineCompletion", uri, 21);
        const [line] = await nextCalls(from, 1, `the completion with ${args.join(" ") || "no route key"}`);
        assert.strictEqual(keyOf(line), want, line);
        assertNotLogged(l2, envSecret);
      } finally {
        await l2.stop();
      }
    }
    console.log(`ok route_key_on_every_call (${router.lines.length} calls through the router, derived key ${derived})`);
  } finally {
    await router.stop();
  }
}

(async () => {
  const only = process.argv.includes("--only") ? flag("only") : "";
  const checks = {
    completionEqualsGenerate, cancelFreesTheSlot, warmupGivesCachedTokens, typingReplay,
    debounceOnlyWithinBursts, commands,
  };
  if (only === "tlsAndApiKey") checks.tlsAndApiKey = tlsAndApiKey;
  if (only === "routeKey") checks.routeKey = routeKey;
  for (const [name, fn] of Object.entries(checks)) {
    if (only && only !== name) continue;
    const t = Date.now();
    await fn();
    console.log(`   ${name}: ${Date.now() - t} ms`);
  }
  stub.close();
})().catch((e) => {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
