// Extracts the real-tokenizer test cases of llama-tokenizer-js (ids produced by
// Meta's Llama-2 SentencePiece tokenizer, with BOS and the leading space) into
// engine/tokenizer/testdata/llama_tokenizer_js_cases.tsv:
//   <input as hex bytes (UTF-8)> TAB <ids separated by spaces>
// and checks that llama-tokenizer-js itself reproduces every case.
//   node tests/oracle/tokenize_js_cases.mjs [--check]
import fs from 'node:fs';
import path from 'node:path';
import {createRequire} from 'node:module';
import {fileURLToPath} from 'node:url';
import llamaTokenizer from 'llama-tokenizer-js';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const out = path.join(here, '../../engine/tokenizer/testdata/llama_tokenizer_js_cases.tsv');
const src = fs.readFileSync(require.resolve('llama-tokenizer-js/llama-tokenizer.js'), 'utf8');

// testCase(<string literal>, [<ids>]) calls in defaultTests.
const re = /testCase\(\s*("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*,\s*\[([\d\s,]+)\]\s*\)/g;
const cases = [];
for (const m of src.matchAll(re)) {
  const input = new Function(`return ${m[1]};`)();
  const ids = m[2].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const got = llamaTokenizer.encode(input, true, true);
  if (got.join(' ') !== ids.join(' ')) throw new Error(`llama-tokenizer-js disagrees on ${JSON.stringify(input)}`);
  cases.push(`${Buffer.from(input, 'utf8').toString('hex')}\t${ids.join(' ')}\n`);
}
if (cases.length < 10) throw new Error(`found only ${cases.length} cases`);
const text = cases.join('');
if (process.argv[2] === '--check') {
  if (fs.readFileSync(out, 'utf8') !== text) {
    console.error(`${out} is stale`);
    process.exit(1);
  }
} else {
  fs.writeFileSync(out, text);
}
console.log(`tokenize_js_cases: ${cases.length} cases`);
