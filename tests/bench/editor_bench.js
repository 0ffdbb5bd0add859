// Editor speed figures (a benchmark, not a test): the typing replay of the
// editor tests against a running phi3-server, through the phi3 language
// server, with and without warm-up. Run by hand on a full-size model:
//
//   build/engine/tools/mkmodel/phi3-mkmodel --preset phi3-mini --type q4_0 --seed 1 --out /tmp/phi3-mini-q4_0.gguf
//   build/service/phi3-server --model /tmp/phi3-mini-q4_0.gguf --no-auth --threads 2 \
//       --listen 127.0.0.1:50051 --metrics-listen 127.0.0.1:9400 &
//   NODE_PATH=clients/lsp/node_modules node tests/bench/editor_bench.js \
//       --server-js clients/lsp/dist/server.js --addr 127.0.0.1:50051 [--keys 200] [--key-ms 150] [--line 80] [--modes cold,warm]
//
// For each mode (no warm-up, then warm-up, each on its own file name so the
// two never share cached prefixes) it opens a 300-line C++ file, asks for a
// completion at the typing position (the cold figure: no warm-up, or after
// the open's warm-up has finished, whose duration is reported), then replays
// --keys keystrokes, one every --key-ms, awaiting the completion at the end of
// each line and every 25 keys as a user pausing would. Reported per mode:
// time from a completion request reaching the language server to the first
// token of its text (p50 / p90 over the awaited completions), cached prompt
// tokens, and the server calls made.
"use strict";
const h = require("../editor/lsp_harness");

function flag(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback === undefined) throw new Error(`--${name} is required`);
  return fallback;
}

function percentile(values, p) {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

// Runs `fn` and returns the status the language server publishes for the
// completion it answers (the first one after `before` completions).
async function completionStatus(lsp, before, fn) {
  await fn();
  await h.waitFor(() => lsp.lastStatus()?.requests > before, 120000, "the completion's status");
  return lsp.statuses.filter((s) => s.requests > before)[0];
}

async function runMode(warmup, serverJs, addr, keys, keyMs, line) {
  const lsp = await h.startLsp(serverJs, ["--addr", addr],
                               { warmup, warmupDebounceMs: 250, debounceMs: 75, maxTokens: 32,
                                 timeoutMs: 300000 });  // the cold figures can take long
  const uri = `file:///bench/${warmup ? "warm" : "cold"}_typing.cc`;
  const text = h.sourceFile(300);
  const result = { mode: warmup ? "warm-up" : "no warm-up" };
  try {
    const opened = Date.now();
    lsp.open(uri, "cpp", text);
    if (warmup) {
      await h.waitFor(() => lsp.lastStatus()?.state !== "busy" && lsp.statuses.length >= 2,
                      600000, "the open's warm-up");
      result.warmupOk = lsp.lastStatus().warmups >= 1;
      result.warmupMs = Date.now() - opened;
      result.warmupPromptTokens = lsp.lastStatus().promptTokens;
    }
    // The first completion at the typing position, right after opening.
    let offset = 0;
    for (let i = 0; i < line; ++i) offset = text.indexOf("\n", offset) + 1;
    const first = await completionStatus(lsp, 0, () => lsp.request("textDocument/inlineCompletion", uri, offset));
    result.openFirstTokenMs = first.lastFirstTokenMs;
    result.openCachedTokens = first.lastCachedPromptTokens;

    const session = h.typingSession(text, line, keys, 25);
    const from = lsp.statuses.length;
    const records = await h.replay(lsp, uri, session, { keyIntervalMs: keyMs });
    await h.waitFor(() => lsp.lastStatus().state === "idle", 60000, "idle");
    // One status per answered completion: the change of `requests`.
    const answered = [];
    let seen = lsp.statuses[from - 1].requests;
    for (const s of lsp.statuses.slice(from)) {
      if (s.requests > seen && s.lastFirstTokenMs !== null) answered.push(s);
      seen = s.requests;
    }
    const firstToken = answered.map((s) => s.lastFirstTokenMs);
    result.awaited = session.filter((k) => k.pause).length;
    result.answered = answered.length;
    result.cancelled = records.filter((r) => !r.answered).length;
    result.p50FirstTokenMs = percentile(firstToken, 50);
    result.p90FirstTokenMs = percentile(firstToken, 90);
    result.maxFirstTokenMs = Math.max(...firstToken);
    result.meanCachedPromptTokens = Math.round(
      answered.reduce((a, s) => a + (s.lastCachedPromptTokens ?? 0), 0) / Math.max(1, answered.length));
    const last = lsp.lastStatus();
    result.sessionPromptTokens = last.promptTokens;
    result.sessionCachedPromptTokens = last.cachedPromptTokens;
    result.sessionWarmups = last.warmups;
    return result;
  } finally {
    await lsp.stop();
  }
}

(async () => {
  const serverJs = require("path").resolve(flag("server-js"));
  const addr = flag("addr");
  const keys = Number(flag("keys", "200"));
  const keyMs = Number(flag("key-ms", "150"));
  const line = Number(flag("line", "80"));
  const started = Date.now();
  const modes = flag("modes", "cold,warm").split(",");
  for (const warmup of [false, true]) {
    if (!modes.includes(warmup ? "warm" : "cold")) continue;
    const r = await runMode(warmup, serverJs, addr, keys, keyMs, line);
    console.log(JSON.stringify(r));
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
})().catch((e) => {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
