// Editor speed figures (a benchmark, not a test): the typing replay of the
// editor tests through the phi3 language server against phi3-server, without
// and then with warm-up. Run by hand on a full-size model (built: ninja -C
// build phi3-server phi3_lsp):
//
//   build/engine/tools/mkmodel/phi3-mkmodel --preset phi3-mini --type q4_0 --seed 1 --out $MODELS/phi3-mini-q4_0.gguf
//   NODE_PATH=clients/lsp/node_modules node tests/bench/editor_bench.js \
//       --server build/service/phi3-server --model $MODELS/phi3-mini-q4_0.gguf --threads 2
//
// --server starts phi3-server on free 127.0.0.1 ports (--no-auth, no usage
// ledger, --threads, then --server-args "FLAGS") and stops it at the end; or --addr HOST:PORT
// [--metrics HOST:PORT] uses a running one. Options: --keys 200 --key-ms 150
// --line 80 --max-tokens 32 --modes cold,warm --server-js clients/lsp/dist/server.js.
//
// For each mode (no warm-up, then warm-up, each on its own file name so the
// two never share cached prefixes) it opens a 300-line C++ file, asks for a
// completion at the typing position (the cold figure: without warm-up the
// whole window is computed; with it, the completion follows the open's
// warm-up, whose duration is reported), then replays --keys keystrokes, one
// every --key-ms, awaiting the completion at the end of each line and every
// 25 keys as a user pausing would. Reported per mode: time from a completion
// request reaching the language server to the first token of its text (p50 /
// p90 over the awaited completions), the same from the server call's start
// (the request's time without any debounce), and from the server's /metrics
// what the mode cost it: calls, prompt tokens computed per call, the prefix
// cache's share of the prompt tokens, the mean wait in the engine's queue.
// Host (CPU, cores, load average before and after) and model are printed
// first: figures from a busy machine are only comparable as ratios.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { spawn } = require("child_process");
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

function host() {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? "unknown CPU";
  const flags = /^flags\s*:\s*(.*)$/m.exec(cpuinfo)?.[1].split(" ") ?? [];
  const simd = ["avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_int8"].filter((f) => flags.includes(f));
  return { cpu: model, cores: os.cpus().length, simd: simd.join(" "), loadavg: os.loadavg().map((l) => l.toFixed(2)).join(" ") };
}

// Starts phi3-server on free loopback ports; resolves with its addresses
// once it prints its ready line.
function startServer(server, model, threads, extra) {
  const args = [`--model=${model}`, "--no-auth", `--threads=${threads}`, "--listen=127.0.0.1:0",
                "--metrics-listen=127.0.0.1:0", "--usage-ledger=none", ...extra];
  const proc = spawn(server, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill("SIGKILL"); reject(new Error(`phi3-server not ready in 300 s:\n${output}`)); }, 300000);
    const onData = (d) => {
      output += d;
      const m = /ready grpc=(\S+) metrics=(\S+)/.exec(output);
      if (m) {
        clearTimeout(timer);
        resolve({ proc, addr: m[1], metrics: m[2], args, stop: () => proc.kill("SIGTERM") });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", onData);
    proc.on("exit", (code) => { clearTimeout(timer); reject(new Error(`phi3-server exited (${code}):\n${output}`)); });
  });
}

// The server's /metrics once it has finished every call (cancelled calls are
// counted when the engine has dropped them).
async function idleMetrics(metrics) {
  let m = null;
  await h.waitFor(async () => {
    m = await h.scrape(metrics);
    return h.metric(m, "phi3_active_streams") === 0 && h.metric(m, "phi3_engine_running_requests") === 0 &&
           h.metric(m, "phi3_engine_waiting_requests") === 0;
  }, 600000, "the server to be idle");
  return m;
}

// What the server did between two /metrics scrapes.
function serverDelta(before, after) {
  const d = (name, must) => h.metric(after, name, must) - h.metric(before, name, must);
  const calls = d("phi3_requests_total");
  const prompt = d("phi3_prompt_tokens_total");
  const cached = d("phi3_cached_prompt_tokens_total");
  const queueCount = d("phi3_request_queue_wait_seconds_count");
  return {
    calls,
    warmupCalls: d("phi3_prefill_requests_total"),
    cancelledCalls: d("phi3_requests_total", ['finish_reason="cancelled"']),
    promptTokens: prompt,
    computedPromptTokensPerCall: calls ? Math.round(((prompt - cached) / calls) * 10) / 10 : null,
    cacheHitShare: prompt ? Math.round((cached / prompt) * 1000) / 1000 : null,
    meanQueueWaitMs: queueCount ? Math.round((d("phi3_request_queue_wait_seconds_sum") / queueCount) * 1000) : null,
    engineSteps: d("phi3_engine_steps_total"),
  };
}

async function runMode(warmup, serverJs, addr, metrics, keys, keyMs, line, maxTokens) {
  const debounceMs = 75;
  const lsp = await h.startLsp(serverJs, ["--addr", addr],
                               { warmup, warmupDebounceMs: 250, debounceMs, maxTokens,
                                 timeoutMs: 300000 });  // the cold figures can take long
  const uri = `file:///bench/${warmup ? "warm" : "cold"}_typing.cc`;
  const text = h.sourceFile(300);
  const result = { mode: warmup ? "warm-up" : "no warm-up", debounceMs };
  const before = metrics ? await idleMetrics(metrics) : null;
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
    await lsp.request("textDocument/inlineCompletion", uri, offset);
    await h.waitFor(() => lsp.lastStatus()?.requests >= 1, 600000, "the first completion's status");
    const first = lsp.statuses.find((s) => s.requests >= 1);
    result.openFirstTokenMs = first.lastFirstTokenMs;
    result.openCachedTokens = first.lastCachedPromptTokens;

    const session = h.typingSession(text, line, keys, 25);
    const from = lsp.statuses.length;
    const fromMetrics = metrics ? await idleMetrics(metrics) : null;
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
    const callFirstToken = answered.map((s) => s.lastCallFirstTokenMs).filter((v) => v !== null);
    result.awaited = session.filter((k) => k.pause).length;
    result.answered = answered.length;
    result.cancelled = records.filter((r) => !r.answered).length;
    result.firstTokenMs = firstToken;  // each awaited completion, in replay order
    result.p50FirstTokenMs = percentile(firstToken, 50);
    result.p90FirstTokenMs = percentile(firstToken, 90);
    result.maxFirstTokenMs = Math.max(...firstToken);
    result.p50CallFirstTokenMs = percentile(callFirstToken, 50);
    result.p90CallFirstTokenMs = percentile(callFirstToken, 90);
    const withUsage = answered.filter((s) => s.lastCachedPromptTokens !== null);
    result.meanCachedPromptTokens = withUsage.length === 0 ? null : Math.round(
      withUsage.reduce((a, s) => a + s.lastCachedPromptTokens, 0) / withUsage.length);
    if (metrics) {
      const after = await idleMetrics(metrics);
      result.server = serverDelta(before, after);        // the whole mode
      result.serverReplay = serverDelta(fromMetrics, after);  // the typing replay alone
    }
    return result;
  } finally {
    await lsp.stop();
  }
}

function summary(r) {
  const lines = [`${r.mode}:`];
  if (r.warmupMs !== undefined) {
    lines.push(`  open warm-up        ${r.warmupMs} ms (${r.warmupPromptTokens} prompt tokens)`);
  }
  lines.push(`  open, 1st completion first token ${r.openFirstTokenMs} ms (cached prompt tokens ${r.openCachedTokens ?? "-"})`);
  lines.push(`  typing replay       first token p50 ${r.p50FirstTokenMs} ms, p90 ${r.p90FirstTokenMs} ms, ` +
             `max ${r.maxFirstTokenMs} ms over ${r.answered} answered (${r.awaited} awaited, ${r.cancelled} cancelled)`);
  lines.push(`    from the server call's start (after the debounce, ${r.debounceMs} ms within bursts only): ` +
             `p50 ${r.p50CallFirstTokenMs} ms, p90 ${r.p90CallFirstTokenMs} ms`);
  const s = r.serverReplay;
  if (s) {
    lines.push(`    server: ${s.calls} calls (${s.cancelledCalls} cancelled, ${s.warmupCalls} warm-ups), ` +
               `${s.computedPromptTokensPerCall} prompt tokens computed per call, prefix cache ` +
               `${(s.cacheHitShare * 100).toFixed(1)}% of prompt tokens, mean queue wait ${s.meanQueueWaitMs} ms, ` +
               `${s.engineSteps} engine steps`);
  }
  return lines.join("\n");
}

(async () => {
  const serverJs = path.resolve(flag("server-js", path.join(__dirname, "../../clients/lsp/dist/server.js")));
  const keys = Number(flag("keys", "200"));
  const keyMs = Number(flag("key-ms", "150"));
  const line = Number(flag("line", "80"));
  const maxTokens = Number(flag("max-tokens", "32"));
  const modes = flag("modes", "cold,warm").split(",");
  const started = Date.now();
  let server = null;
  let addr = flag("addr", "");
  let metrics = flag("metrics", "");
  const model = flag("model", "");
  if (!addr) {
    server = await startServer(flag("server"), model, Number(flag("threads", "2")),
                               flag("server-args", "").split(" ").filter((a) => a));
    ({ addr, metrics } = server);
  }
  try {
    const info = { host: host(), node: process.version };
    if (server) info.server = `phi3-server ${server.args.join(" ")}`;
    if (model) info.modelFile = `${model} (${fs.statSync(model).size} bytes)`;
    if (metrics) {
      const m = Object.keys(await h.scrape(metrics)).find((k) => k.startsWith("phi3_model_info{"));
      if (m) info.model = m.slice("phi3_model_info".length);
    }
    console.log(JSON.stringify(info));
    const results = [];
    for (const warmup of [false, true]) {
      if (!modes.includes(warmup ? "warm" : "cold")) continue;
      const r = await runMode(warmup, serverJs, addr, metrics, keys, keyMs, line, maxTokens);
      console.log(JSON.stringify(r));
      results.push(r);
    }
    console.log(`\nEditor latency, ${keys} keystrokes every ${keyMs} ms on a 300-line file ` +
                `(host: ${info.host.cpu}, ${info.host.cores} cores, load average before ${info.host.loadavg}, ` +
                `after ${os.loadavg().map((l) => l.toFixed(2)).join(" ")})`);
    for (const r of results) console.log(summary(r));
    console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } finally {
    server?.stop();
  }
})().catch((e) => {
  console.error(`FAILED: ${e.stack || e}`);
  process.exit(1);
});
