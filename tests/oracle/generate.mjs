// llama.cpp (node-llama-cpp, prebuilt CPU libraries) as the oracle for greedy
// generation and next-token logits. Used by tests/conformance/generation.
//
//   node generate.mjs --model FILE --prompts PROMPTS.json --out OUT.json
//        [--logprobs-out FILE.bin] [--ctx N] [--threads N] [--steps N]
//
// PROMPTS.json: [[token ids], ...] (BOS included if wanted; used as they are).
// For each prompt: the prompt is evaluated, then `steps` greedy tokens are
// generated one at a time (temperature 0 = llama.cpp's greedy sampler: argmax
// of the raw logits; no repeat penalty, no other sampler in the chain; end-of-
// generation tokens do not stop it). OUT.json:
//   {"n_vocab":V,"ggml_cpu_variant":"zen4","results":[{"tokens":[...],"gaps":[...],"top":[...]}...]}
// gaps[i] = top-1 minus top-2 logit at step i (= ln p1 - ln p2); top[i] = the
// 8 most likely tokens at step i as [token, top-1 logit minus its logit]. --logprobs-out gets, per prompt, V little-endian f32
// log-softmax values of the first step (the logits up to a constant).
//
// Settings that decide the numbers: flash attention off (llama.cpp's non-FA
// path: f16 K/V cache, f16-rounded Q and probabilities), f16 KV cache (the
// default), one sequence, context size --ctx (llama.cpp pads it to 256; with
// LongRoPE files it picks the long factors when that exceeds the original
// context), batch size 512 (node-llama-cpp sets n_ubatch = n_batch): a prompt
// is one llama_decode per 512 tokens and only its last token has logits, so
// llama.cpp computes the last layer after attention on that row only. Our
// model mirrors exactly this (engine/model/forward.h "Rounding"); the prompt
// rounding does not depend on the split as long as it is a multiple of 4.
import fs from 'node:fs';
import {getLlama, LlamaLogLevel} from 'node-llama-cpp';
import {loadedCpuVariant} from './cpu_variant.mjs';

function parseArgs(argv) {
  const args = {ctx: 4096, threads: 2, steps: 32};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--model') args.model = next();
    else if (a === '--prompts') args.prompts = next();
    else if (a === '--out') args.out = next();
    else if (a === '--logprobs-out') args.logprobsOut = next();
    else if (a === '--ctx') args.ctx = Number(next());
    else if (a === '--threads') args.threads = Number(next());
    else if (a === '--steps') args.steps = Number(next());
    else throw new Error(`unknown argument ${a}`);
  }
  if (!args.model || !args.prompts || !args.out) {
    throw new Error('--model, --prompts and --out are required');
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const prompts = JSON.parse(fs.readFileSync(args.prompts, 'utf8'));
const llama = await getLlama({gpu: false, build: 'never', logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath: args.model});
const context = await model.createContext({
  contextSize: args.ctx, threads: args.threads, flashAttention: false, sequences: 1,
  batchSize: Math.min(args.ctx, 512),
});
const seq = context.getSequence();
const greedy = {generateNext: {token: true, probabilities: true}};

const results = [];
const logprobChunks = [];
let nVocab = 0;
for (const prompt of prompts) {
  await seq.clearHistory();
  const tokens = [];
  const gaps = [];
  const top = [];
  let input = prompt.map((t, i) => (i === prompt.length - 1 ? [t, greedy] : t));
  for (let step = 0; step < args.steps; ++step) {
    const res = await seq.controlledEvaluate(input);
    const next = res[input.length - 1].next;
    const probs = next.probabilities;
    const it = probs.entries();
    const [t1, p1] = it.next().value;
    const [, p2] = it.next().value;
    const best = [];
    for (const [t, p] of probs) {
      if (best.length === 8) break;
      best.push([t, Math.log(p1) - Math.log(p)]);
    }
    if (next.token !== t1) throw new Error(`greedy token ${next.token} != argmax ${t1}`);
    if (step === 0) {
      nVocab = probs.size;
      const lp = new Float32Array(nVocab);
      for (const [t, p] of probs) lp[t] = Math.log(p);
      logprobChunks.push(Buffer.from(lp.buffer));
    }
    tokens.push(t1);
    gaps.push(Math.log(p1) - Math.log(p2));
    top.push(best);
    input = [[t1, greedy]];
  }
  results.push({tokens, gaps, top});
}
fs.writeFileSync(args.out, JSON.stringify({n_vocab: nVocab, ggml_cpu_variant: loadedCpuVariant(), results}));
if (args.logprobsOut) fs.writeFileSync(args.logprobsOut, Buffer.concat(logprobChunks));
await context.dispose();
await model.dispose();
