// Measures how well separated llama.cpp's greedy choices are on a model:
// for each prompt, 32 greedy steps; at each step the gap between the top-1
// and top-2 logits (= ln p1 - ln p2 of the softmax). Prints a JSON summary.
//
//   node logit_gaps.mjs FILE [steps]   (GREEDY_OUT=x.json also saves the greedy tokens)
import {getLlama} from 'node-llama-cpp';

const prompts = [
  'Hello', 'The quick brown fox jumps over the lazy dog.', 'def fib(n):\n    return',
  '<|user|>\nWhat is the capital of France?<|end|>\n<|assistant|>\n', '日本語のテキスト',
  'Once upon a time', '1, 2, 3, 4, 5,', '   indented    spaces\t\ttabs',
];
const llama = await getLlama({gpu: false, build: 'never', logLevel: 'error'});
const model = await llama.loadModel({modelPath: process.argv[2]});
const steps = Number(process.argv[3] || 32);
const context = await model.createContext({contextSize: 512, threads: 2});
const gaps = [];
const greedy = [];
const seq = context.getSequence();
for (const prompt of prompts) {
  await seq.clearHistory();
  const seqTokens = [];
  greedy.push(seqTokens);
  let input = [model.tokens.bos, ...model.tokenize(prompt, true)];
  for (let s = 0; s < steps; ++s) {
    const res = await seq.controlledEvaluate(input.map((t, i) => i === input.length - 1
        ? [t, {generateNext: {probabilities: true}}] : t));
    const it = res[input.length - 1].next.probabilities.entries();
    const [t1, p1] = it.next().value;
    const [, p2] = it.next().value;
    gaps.push(Math.log(p1) - Math.log(p2));
    seqTokens.push(t1);
    input = [t1];
  }
}
gaps.sort((a, b) => a - b);
const frac = (x) => gaps.filter((g) => g < x).length / gaps.length;
console.log(JSON.stringify({
  file: process.argv[2], steps: gaps.length, min: gaps[0].toFixed(4),
  p10: gaps[Math.floor(gaps.length * 0.1)].toFixed(3), median: gaps[gaps.length >> 1].toFixed(3),
  frac_below_0_05: frac(0.05).toFixed(3), frac_below_0_1: frac(0.1).toFixed(3),
  frac_below_0_2: frac(0.2).toFixed(3),
}));
if (process.env.GREEDY_OUT) {
  const fs = await import('node:fs');
  fs.writeFileSync(process.env.GREEDY_OUT, JSON.stringify(greedy));
}
