// llama.cpp baseline for phi3-bench (tests/bench, BENCHMARKS.md), driven
// through node-llama-cpp's prebuilt CPU libraries. Nothing is compiled or
// downloaded: getLlama({gpu: false, build: "never"}).
//
// Usage:
//   node tests/oracle/bench.mjs --model FILE [--threads N] [--reps R]
//        [--figures tg128,pp512,tg128@2048,parallel:1,parallel:4,ttft,mem:f16,mem:q8_0]
//        [--parallel-tokens G] [--serve]
//
// Without --serve: runs every figure R times and prints one JSON object
//   {"llama_cpp": {...system info...}, "figures": {name: {"median":..,"samples":[..],..}}}.
// With --serve (used by phi3-bench to alternate ours / llama.cpp in one run):
//   prints one "ready" JSON line, then reads one figure name per stdin line and
//   answers each with one JSON line {"figure":..., "value":..., ...}; EOF ends it.
//
// Figures (only evaluation is timed, never the load or context creation):
//   tg128        128 greedy tokens after an 8-token prompt; value = tokens/s
//   pp512        512-token prompt, no generation, batch 512; value = tokens/s
//   tg128@2048   128 greedy tokens after 2048 tokens of context; value = tokens/s
//   parallel:N   N sequences in one context, each an 8-token prompt then G greedy
//                tokens decoded together; value = aggregate tokens/s, plus
//                p50/p99 inter-token latency (ms) over all streams
//   ttft         2000-token shared prefix + 50-token suffix: time to first token
//                cold (empty cache) vs warm (prefix kept in the sequence); value =
//                warm/cold, plus cold_ms, warm_ms
//   mem:f16, mem:q8_0  resident bytes added by one 4096-token context (KV + compute
//                buffers) after filling it; value = bytes
import fs from "node:fs";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import readline from "node:readline";
import {loadedCpuVariant} from "./cpu_variant.mjs";

function parseArgs(argv) {
  const args = {threads: 2, reps: 5, parallelTokens: 64, serve: false,
    figures: "tg128,pp512,tg128@2048"};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) fail(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--model") args.model = next();
    else if (a === "--threads") args.threads = Number(next());
    else if (a === "--reps") args.reps = Number(next());
    else if (a === "--figures") args.figures = next();
    else if (a === "--parallel-tokens") args.parallelTokens = Number(next());
    else if (a === "--serve") args.serve = true;
    else fail(`unknown argument ${a}`);
  }
  if (!args.model) fail("--model FILE is required");
  if (!(args.threads >= 1)) fail(`--threads must be >= 1, got ${args.threads}`);
  if (!(args.reps >= 1)) fail(`--reps must be >= 1, got ${args.reps}`);
  return args;
}

function fail(message) {
  process.stderr.write(`bench.mjs: ${message}\n`);
  process.exit(2);
}

const now = () => Number(process.hrtime.bigint()) / 1e6;  // ms

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1));
  return sorted[idx];
}

function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// Deterministic token ids that avoid the control/byte region so every id is an
// ordinary piece; the cost of a forward pass does not depend on which ids.
// Same ids as phi3-bench's PromptTokens (engine/tools/bench/bench_stats.cc).
function promptTokens(count, salt) {
  const out = [1];  // BOS
  let x = (12345 + salt * 7919) >>> 0;
  while (out.length < count) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    out.push(300 + (x % 31000));
  }
  return out;
}

function rssBytes() {
  const status = fs.readFileSync("/proc/self/status", "utf8");
  const m = status.match(/VmRSS:\s+(\d+) kB/);
  return m ? Number(m[1]) * 1024 : NaN;
}

class LlamaBench {
  constructor(args) {
    this.args = args;
    this.logs = [];
    // Every run uses fresh prompts (salt + 1000 * run) as phi3-bench does for
    // our engine, whose prefix cache would otherwise serve repeated prompts.
    this.runCount = 0;
  }

  async init() {
    this.llama = await getLlama({
      gpu: false, build: "never", maxThreads: this.args.threads,
      logLevel: LlamaLogLevel.info,
      logger: (level, message) => { if (this.logs.length < 2000) this.logs.push(message); },
    });
    if (this.llama.buildType !== "prebuilt") fail(`expected a prebuilt llama.cpp, got ${this.llama.buildType}`);
    const rssBefore = rssBytes();
    this.model = await this.llama.loadModel({modelPath: this.args.model, gpuLayers: 0});
    this.modelRss = rssBytes() - rssBefore;
    // One single-sequence context serves tg128, pp512 and tg128@2048.
    this.single = await this.createContext(1, 2048 + 128 + 64, 512);
    this.singleSeq = this.single.getSequence();
    // Warm-up: first evaluations allocate and fault in the weights.
    await this.decode(this.singleSeq, promptTokens(8, 99), 4);
    return {
      cpu_variant: loadedCpuVariant(),
      system_info: this.llama.systemInfo.trim(),
      build_type: this.llama.buildType,
      threads: this.single.currentThreads,
      // "auto" is resolved inside llama.cpp; its log says what it chose.
      flash_attention: this.logs.map((m) => m.match(/Flash Attention (enabled|disabled)/i))
        .filter(Boolean).map((m) => m[1].toLowerCase()).pop() ?? String(this.single.flashAttention),
      batch_size: this.single.batchSize,
      model_rss_bytes: this.modelRss,
      node_llama_cpp: "3.21.1",
    };
  }

  async createContext(sequences, contextSize, batchSize, extra = {}) {
    return this.model.createContext({
      sequences, contextSize, batchSize,
      threads: {ideal: this.args.threads, min: this.args.threads},
      ignoreMemorySafetyChecks: true, failedCreationRemedy: false, ...extra,
    });
  }

  // Evaluates `prompt` (untimed up to its last token) and then times
  // `count` greedy decode steps. Returns {ms, stamps} where stamps are the
  // arrival times of each generated token.
  async decode(seq, prompt, count, {timePrompt = false} = {}) {
    await seq.clearHistory();
    if (prompt.length > 1) await seq.evaluateWithoutGeneratingNewTokens(prompt.slice(0, -1));
    const stamps = [];
    const t0 = now();
    let n = 0;
    for await (const _token of seq.evaluate(prompt.slice(-1), {temperature: 0})) {
      stamps.push(now());
      if (++n >= count) break;
    }
    return {ms: stamps[stamps.length - 1] - t0, t0, stamps};
  }

  async tg(depth) {
    const prompt = promptTokens(depth > 0 ? depth : 8, 1 + this.salt);
    const {ms} = await this.decode(this.singleSeq, prompt, 128);
    return {value: 128 / (ms / 1000), ms};
  }

  async pp512() {
    const tokens = promptTokens(512, 2 + this.salt);
    await this.singleSeq.clearHistory();
    const t0 = now();
    await this.singleSeq.evaluateWithoutGeneratingNewTokens(tokens);
    const ms = now() - t0;
    return {value: 512 / (ms / 1000), ms};
  }

  async parallel(n) {
    const g = this.args.parallelTokens;
    if (!this.par || this.parN !== n) {
      if (this.par) await this.par.dispose();
      this.par = null;
      this.par = await this.createContext(n, 8 + g + 8, Math.max(512, n));
      this.parN = n;
      this.parSeqs = Array.from({length: n}, () => this.par.getSequence());
    }
    const prompts = this.parSeqs.map((_, i) => promptTokens(8, 100 + i + this.salt));
    await Promise.all(this.parSeqs.map(async (seq, i) => {
      await seq.clearHistory();
      await seq.evaluateWithoutGeneratingNewTokens(prompts[i].slice(0, -1));
    }));
    const t0 = now();
    const all = await Promise.all(this.parSeqs.map(async (seq, i) => {
      const stamps = [];
      for await (const _token of seq.evaluate(prompts[i].slice(-1), {temperature: 0})) {
        stamps.push(now());
        if (stamps.length >= g) break;
      }
      return stamps;
    }));
    const t1 = Math.max(...all.map((s) => s[s.length - 1]));
    const gaps = [];
    for (const s of all) for (let i = 1; i < s.length; i++) gaps.push(s[i] - s[i - 1]);
    gaps.sort((a, b) => a - b);
    return {
      value: (n * g) / ((t1 - t0) / 1000), ms: t1 - t0, streams: n, tokens_per_stream: g,
      itl_p50_ms: percentile(gaps, 50), itl_p99_ms: percentile(gaps, 99),
      ttft_p50_ms: median(all.map((s) => s[0] - t0)),
    };
  }

  async ttft() {
    const prefix = promptTokens(2000, 3 + this.salt);
    const suffix = promptTokens(51, 4 + this.salt).slice(1);
    const seq = this.singleSeq;
    // Cold: nothing cached, the whole 2050-token prompt is evaluated.
    await seq.clearHistory();
    let t0 = now();
    await seq.evaluateWithoutGeneratingNewTokens([...prefix, ...suffix.slice(0, -1)]);
    for await (const _t of seq.evaluate(suffix.slice(-1), {temperature: 0})) break;
    const coldMs = now() - t0;
    // Warm: the prefix stays in the sequence's KV; only the suffix is evaluated
    // (what llama-server's prompt cache does for a repeated prefix).
    await seq.eraseContextTokenRanges([{start: prefix.length, end: seq.nextTokenIndex}]);
    const suffix2 = promptTokens(51, 5 + this.salt).slice(1);
    t0 = now();
    await seq.evaluateWithoutGeneratingNewTokens(suffix2.slice(0, -1));
    for await (const _t of seq.evaluate(suffix2.slice(-1), {temperature: 0})) break;
    const warmMs = now() - t0;
    return {value: warmMs / coldMs, cold_ms: coldMs, warm_ms: warmMs};
  }

  async memory(kvType) {
    // Drop the parallel context so it does not blur the measurement.
    if (this.par) { await this.par.dispose(); this.par = null; this.parN = 0; }
    const before = rssBytes();
    const extra = kvType === "q8_0"
      ? {experimentalKvCacheKeyType: "Q8_0", experimentalKvCacheValueType: "Q8_0", flashAttention: true}
      : {};
    const ctx = await this.createContext(1, 4096, 512, extra);
    try {
      const seq = ctx.getSequence();
      await seq.evaluateWithoutGeneratingNewTokens(promptTokens(4000, 6 + this.salt));
      const after = rssBytes();
      return {value: after - before, context: 4096, kv_type: kvType, flash_attention: ctx.flashAttention};
    } finally {
      await ctx.dispose();
    }
  }

  async run(figure) {
    this.salt = 1000 * this.runCount++;
    if (figure === "tg128") return this.tg(0);
    if (figure === "pp512") return this.pp512();
    if (figure === "tg128@2048") return this.tg(2048);
    if (figure === "ttft") return this.ttft();
    let m = figure.match(/^parallel:(\d+)$/);
    if (m) return this.parallel(Number(m[1]));
    m = figure.match(/^mem:(f16|q8_0)$/);
    if (m) return this.memory(m[1]);
    throw new Error(`unknown figure "${figure}"`);
  }
}

let bench = null;

async function main() {
  const args = parseArgs(process.argv.slice(2));
  bench = new LlamaBench(args);
  const info = await bench.init();
  if (args.serve) {
    process.stdout.write(JSON.stringify({ready: true, ...info}) + "\n");
    const rl = readline.createInterface({input: process.stdin});
    for await (const line of rl) {
      const figure = line.trim();
      if (!figure) continue;
      try {
        const r = await bench.run(figure);
        process.stdout.write(JSON.stringify({figure, ...r}) + "\n");
      } catch (e) {
        process.stdout.write(JSON.stringify({figure, error: String(e?.message ?? e)}) + "\n");
      }
    }
  } else {
    const figures = {};
    for (const figure of args.figures.split(",").filter(Boolean)) {
      const samples = [];
      let last;
      try {
        for (let r = 0; r < args.reps; r++) {
          last = await bench.run(figure);
          samples.push(last.value);
        }
        figures[figure] = {...last, median: median(samples), samples};
        delete figures[figure].value;
      } catch (e) {
        figures[figure] = {error: String(e?.message ?? e)};
      }
    }
    process.stdout.write(JSON.stringify({llama_cpp: info, figures}, null, 1) + "\n");
  }
  await bench.model.dispose();
  await bench.llama.dispose();
}

main().catch((e) => {
  if (bench) process.stderr.write(bench.logs.slice(-30).join("\n") + "\n");
  process.stderr.write(`bench.mjs: ${e?.stack ?? e}\n`);
  process.exit(1);
});
