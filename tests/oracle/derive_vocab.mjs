// Derives engine/tokenizer/data/llama2_vocab.tsv (Llama-2's 32,000 SentencePiece
// pieces with their token types and scores) from the npm package llama-tokenizer-js,
// which embeds the vocabulary (id order) and the BPE merge list of Llama-2's HF
// tokenizer.json. Phi-3's added tokens and pad rows are applied in C++
// (engine/tokenizer/vocab_data.cc), following llama.cpp's Phi-3 converter.
//
//   node tests/oracle/derive_vocab.mjs [OUT]    writes OUT (default: the repo file)
//   node tests/oracle/derive_vocab.mjs --check  exits 1 if the committed file differs
//
// Output: one line per id, "type<TAB>score<TAB>piece", with llama.cpp's token type
// values (1 normal, 2 unknown, 3 control, 6 byte). In piece, backslash, tab, CR and
// LF are written as \\, \t, \r, \n (24 Llama pieces contain a CR, e.g. ";\r").
//
// Scores. The merge list only fixes the ORDER of the pieces' scores: HF's converter
// emits a merge "l r" for every split of every piece and sorts all merges by the
// merged piece's score (descending, stable in (id(l), id(r)) order). This script
// checks what that order says about the real tokenizer.model and then assigns
// its values:
//  - <unk>, <s>, </s> and the 256 byte pieces <0x00>..<0xFF>: score 0 (meta pieces).
//  - every learned piece (ids 259..): SentencePiece's BPE trainer stores the i-th
//    learned piece with score -i, so id 259 + i has score -i; this includes the
//    2,129 single characters that follow the learned merges (ids 29871..31999).
//  - whitespace-run pieces "▁▁".."▁"x16: -1e9 (Llama edited them down so that they
//    merge last). The merge list proves they share one score below all others:
//    their merges form the tail of the list, in (id(l), id(r)) order.
// The resulting order reproduces the merge list exactly (checked below), so
// llama.cpp's score-ordered SPM merging equals the reference tokenizer (checked
// again by the C++ unit tests on llama-tokenizer-js's real-tokenizer cases).
import fs from 'node:fs';
import path from 'node:path';
import {fileURLToPath} from 'node:url';
import llamaTokenizer from 'llama-tokenizer-js';

const here = path.dirname(fileURLToPath(import.meta.url));
const defaultOut = path.join(here, '../../engine/tokenizer/data/llama2_vocab.tsv');

function fail(msg) {
  console.error(`derive_vocab: ${msg}`);
  process.exit(1);
}

const vocab = llamaTokenizer.vocabById;
const byString = llamaTokenizer.vocabByString;
if (vocab.length !== 32000) fail(`expected 32000 pieces, got ${vocab.length}`);
if (vocab[0] !== '<unk>' || vocab[1] !== '<s>' || vocab[2] !== '</s>') fail('bad meta pieces');
for (let b = 0; b < 256; b++) {
  const want = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
  if (vocab[3 + b] !== want) fail(`id ${3 + b}: expected ${want}, got ${vocab[3 + b]}`);
}
for (let id = 0; id < vocab.length; id++) {
  if (vocab[id].length === 0) fail(`id ${id}: empty piece`);
  if (byString.get(vocab[id]) !== id) fail(`id ${id}: duplicate piece`);
}

const isWhitespaceRun = (s) => /^\u2581{2,}$/.test(s);

// First merge rank at which each piece is produced, and every merge's piece.
const merges = [...llamaTokenizer.merges.keys()];  // in priority order
const firstRank = new Map();
const mergedIds = [];
merges.forEach((m, rank) => {
  const [l, r] = m.split(' ');
  const id = byString.get(l + r);
  if (id === undefined) fail(`merge ${m} yields no piece`);
  mergedIds.push(id);
  if (!firstRank.has(id)) firstRank.set(id, rank);
});

// Learned pieces are ids 259..lastMerged; the rest are single characters.
const learned = [...firstRank.keys()].sort((a, b) => a - b);
const lastMerged = learned[learned.length - 1];
if (learned[0] !== 259 || learned.length !== lastMerged - 259 + 1) {
  fail('learned pieces are not the contiguous id range starting at 259');
}
for (let id = lastMerged + 1; id < vocab.length; id++) {
  if ([...vocab[id]].length !== 1) fail(`id ${id}: expected a single character`);
}

const score = new Float32Array(vocab.length);
const type = new Int32Array(vocab.length);
for (let id = 0; id < vocab.length; id++) {
  if (id === 0) { type[id] = 2; score[id] = 0; continue; }
  if (id <= 2) { type[id] = 3; score[id] = 0; continue; }
  if (id < 259) { type[id] = 6; score[id] = 0; continue; }
  type[id] = 1;
  score[id] = isWhitespaceRun(vocab[id]) ? -1e9 : -(id - 259);
}

// The merge list must be exactly the merges sorted by (score desc, id(l), id(r)).
const expected = [];
for (const id of learned) {
  const p = [...vocab[id]];
  for (let k = 1; k < p.length; k++) {
    const l = p.slice(0, k).join(''), r = p.slice(k).join('');
    if (byString.has(l) && byString.has(r)) expected.push([l, r, score[id], byString.get(l), byString.get(r)]);
  }
}
expected.sort((a, b) => (b[2] - a[2]) || (a[3] - b[3]) || (a[4] - b[4]));
if (expected.length !== merges.length) fail(`merge count ${merges.length} vs derived ${expected.length}`);
// Within one merged piece the converter orders splits by (id(l), id(r)); pieces of
// equal score other than the whitespace runs do not exist, so compare piece order
// and, inside the whitespace tail, the exact split order.
for (let i = 0; i < merges.length; i++) {
  const got = merges[i], want = `${expected[i][0]} ${expected[i][1]}`;
  const gotId = mergedIds[i], wantId = byString.get(expected[i][0] + expected[i][1]);
  if (gotId !== wantId) fail(`merge rank ${i}: list has ${got}, scores imply ${want}`);
  if (isWhitespaceRun(vocab[gotId]) && got !== want) fail(`whitespace tail rank ${i}: ${got} vs ${want}`);
}

let out = '';
const escape = (s) => s.replace(/[\\\t\r\n]/g, (c) => ({'\\': '\\\\', '\t': '\\t', '\r': '\\r', '\n': '\\n'})[c]);
for (let id = 0; id < vocab.length; id++) out += `${type[id]}\t${score[id]}\t${escape(vocab[id])}\n`;

const args = process.argv.slice(2);
if (args[0] === '--check') {
  const committed = fs.readFileSync(defaultOut, 'utf8');
  if (committed !== out) fail(`${defaultOut} differs from the derivation`);
  console.log(`derive_vocab: ${defaultOut} is up to date (${vocab.length} pieces, ${merges.length} merges checked)`);
} else {
  const file = args[0] || defaultOut;
  fs.mkdirSync(path.dirname(file), {recursive: true});
  fs.writeFileSync(file, out);
  console.log(`derive_vocab: wrote ${file} (${vocab.length} pieces, ${out.length} chars; ${merges.length} merges checked)`);
}
