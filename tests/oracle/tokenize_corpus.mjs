// Deterministic tokenizer conformance corpus.
//   node tests/oracle/tokenize_corpus.mjs CORPUS_OUT SEQS_OUT
// CORPUS_OUT: one string per line as hex of its UTF-8 bytes (always valid UTF-8:
//   the oracle passes strings through JS, which cannot carry invalid bytes).
// SEQS_OUT: token id sequences (space-separated) for detokenization checks.
// Categories: English prose, Python/JS/C++ code with tabs and deep indentation,
// whitespace runs, CJK, emoji (modifiers, ZWJ, flags, keycaps), combining marks
// and other scripts, control characters and rare code points, invalid-looking
// sequences, special-token strings (alone, adjacent, partial, with whitespace on
// either side, chat-formatted), random mixtures and a few long strings.
import fs from 'node:fs';

function rng(seed) {  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const rand = rng(20240425);
const int = (n) => Math.floor(rand() * n);
const pick = (a) => a[int(a.length)];
const rep = (s, n) => s.repeat(n);

const words = ('the of and to in is was for that with as on by at from his her an which or are this ' +
  'be had not but have were one their they all there been has when who will more no if out so said ' +
  'what up its about into than them can only other new some could time these two may then do first ' +
  'any my now such like our over man me even most made after also did many before must through back ' +
  'years where much your way well down should because each just those people how too little state ' +
  'good very make world still own see men work long get here between both life being under never day ' +
  'same another know while last might us great old year off come since against go came right used take ' +
  'three tokenizer llama Phi Microsoft Python JavaScript kernel quantization throughput latency ' +
  "don't it's we're I'm you'll they've can't won't O'Brien naïve café résumé coöperate façade").split(' ');
const punct = ['.', ',', '!', '?', ';', ':', '...', ' -', ' —', '"', "'", ')', '(', ' (', '[1]'];

function sentence() {
  const n = 3 + int(18);
  let s = '';
  for (let i = 0; i < n; i++) {
    let w = pick(words);
    if (i === 0 || rand() < 0.08) w = w[0].toUpperCase() + w.slice(1);
    if (rand() < 0.05) w = String(int(100000));
    if (rand() < 0.03) w = (rand() * 1000).toFixed(int(4));
    s += (i ? ' ' : '') + w;
    if (rand() < 0.1) s += pick(punct);
  }
  return s + pick(['.', '!', '?', '', '.\n', '\n\n']);
}
function prose() {
  const n = 1 + int(4);
  let s = '';
  for (let i = 0; i < n; i++) s += (i ? pick([' ', '  ', '\n', '\n\n']) : '') + sentence();
  return s;
}

const pySnippets = [
  'def f(x):\n    return x * 2\n',
  'class Foo(Bar):\n    """Doc."""\n\n    def __init__(self, a, b=None):\n        self.a = a\n        if b is None:\n            b = {}\n        self.b = b\n',
  'for i in range(10):\n\tif i % 2 == 0:\n\t\tprint(f"{i:>4}")\n\telse:\n\t\tcontinue\n',
  'import numpy as np\nx = np.zeros((3, 4), dtype=np.float32)\nprint(x.shape)  # (3, 4)\n',
  'try:\n    value = d["key"]\nexcept KeyError as e:\n    raise ValueError(str(e)) from e\n',
  'lambda a, *args, **kw: [y for y in args if y]\n',
  '@decorator\nasync def main() -> None:\n    await asyncio.sleep(0.1)\n',
];
const jsSnippets = [
  'function add(a, b) {\n  return a + b;\n}\n',
  'const xs = [1, 2, 3].map((x) => x ** 2).filter(Boolean);\n',
  'export default class A extends B {\n\tconstructor() {\n\t\tsuper();\n\t\tthis.map = new Map();\n\t}\n}\n',
  'if (a === b && c !== d || !e) { console.log(`value: ${a}`); }\n',
  'const re = /^\\s*(\\d+)\\.(\\d+)$/u; // version\n',
  'fetch(url).then(r => r.json()).catch(err => { throw err; });\n',
];
const cppSnippets = [
  '#include <vector>\n\nint main(int argc, char** argv) {\n  std::vector<int> v{1, 2, 3};\n  return v.size();\n}\n',
  'template <typename T>\nT Max(const T& a, const T& b) {\n\treturn a < b ? b : a;\n}\n',
  'namespace phi3 {\nnamespace {\nconstexpr int kN = 1 << 10;\n}  // namespace\n}  // namespace phi3\n',
  'for (size_t i = 0; i < n; ++i) {\n    for (size_t j = 0; j < m; ++j) {\n        c[i * m + j] += a[i] * b[j];\n    }\n}\n',
  'struct S { int x; float y; };\nstatic_assert(sizeof(S) == 8, "size");\n',
  'auto lambda = [&](int x) -> int { return x->y->z; };\n',
];
function code() {
  const lang = int(3);
  let s = pick([pySnippets, jsSnippets, cppSnippets][lang]);
  if (rand() < 0.5) {  // deep indentation
    const unit = pick(['  ', '    ', '\t', ' \t', '        ']);
    const depth = 1 + int(12);
    s = s.split('\n').map((l) => (l ? rep(unit, depth) + l : l)).join('\n');
  }
  if (rand() < 0.3) s = s.replace(/\n/g, '\r\n');
  if (rand() < 0.3) s += rep(' ', int(6)) + rep('\t', int(3));
  if (rand() < 0.3) s = rep(' ', 1 + int(8)) + s;
  return s;
}

function whitespace() {
  const parts = [' ', '  ', '\t', '\n', '\r\n', '\r', '\v', '\f', '\u00a0', '\u3000', '\u2003', '\u200b'];
  let s = '';
  const n = 1 + int(8);
  for (let i = 0; i < n; i++) {
    s += rand() < 0.5 ? rep(' ', 1 + int(40)) : rep(pick(parts), 1 + int(5));
    if (rand() < 0.4) s += pick(words);
  }
  return s;
}

const cjk = ['镇', '中文', '你好，世界！', '机器学习模型', '東京都', 'こんにちは', 'カタカナ', 'ひらがなとカタカナ',
  '한국어', '안녕하세요', '漢字', '鑫', '龘', '𠀀', '𪚥', '語彙', '「引用」', '。、・', '１２３ＡＢＣ'];
function cjkText() {
  let s = '';
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) s += pick(cjk) + (rand() < 0.3 ? pick([' ', '', '\n', pick(words)]) : '');
  return s;
}

const emoji = ['🦙', '😀', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇺🇸', '🇯🇵', '1️⃣', '#️⃣', '❤️', '🧑🏻‍💻', '👩‍❤️‍💋‍👨',
  '🤷‍♂️', '✨', '🔥', '🫠', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '☕', '©', '™'];
function emojiText() {
  let s = '';
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) s += pick(emoji) + (rand() < 0.4 ? pick([' ', '', pick(words) + ' ']) : '');
  return s;
}

const marks = ['e\u0301', 'a\u0308', 'n\u0303', 'o\u0302\u0323', 'Z\u0351\u0352\u0357\u035b\u0300\u0301',
  'क्षत्रिय', 'नमस्ते', 'مرحبا بالعالم', 'שָׁלוֹם', 'ภาษาไทย', 'Ελληνικά', 'Русский текст', 'ᏣᎳᎩ',
  'ǅ', 'ﬁ', 'Å', 'Å', '\u0301', 'x\u20dd', 'İstanbul', 'ß', 'ẞ'];
function marksText() {
  let s = '';
  const n = 1 + int(5);
  for (let i = 0; i < n; i++) s += pick(marks) + pick([' ', '', '\n']);
  return s;
}

function rareText() {
  const cps = [0x00, 0x01, 0x07, 0x08, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9f, 0xa0, 0xad, 0xff, 0x2028, 0x2029,
    0xfeff, 0xfffd, 0xfffe, 0xffff, 0xe000, 0xf8ff, 0x1d400, 0x1f600, 0x10ffff, 0x10000, 0x2581, 0x202e];
  let s = '';
  const n = 1 + int(8);
  for (let i = 0; i < n; i++) {
    s += String.fromCodePoint(pick(cps));
    if (rand() < 0.3) s += pick(words);
  }
  return s;
}

function invalidLooking() {
  const xs = ['\\xff', '\\x00', '<0xFF>', '<0x0A>', '<0x41>', '<0xE4><0xB8><0xAD>', '\\u0000', '\\n', '\ud800',
    '\udfff', 'a\ud83dz', '\u2581', '\u2581\u2581 \u2581', '[PAD32011]', '[PAD32063]', '<unk', 'unk>', '[EMPTY_1]',
    '%C3%A9', '&lt;s&gt;', '&#x1F999;', '\\uD83E\\uDD99'];
  let s = '';
  const n = 1 + int(4);
  for (let i = 0; i < n; i++) s += pick(xs) + pick(['', ' ', '\n', pick(words)]);
  return s;
}

const specials = ['<|user|>', '<s>', '</s>', '<|end|>', '<|endoftext|>', '<|assistant|>', '<|system|>',
  '<unk>', '<|placeholder1|>', '<|placeholder4|>', '<|placeholder6|>'];
function specialText() {
  const ws = ['', ' ', '  ', '\n', '\n\n', '\t', ' \n ', '\r\n', '   \t\n'];
  const partial = ['<|use', 'user|>', '<|end', '|>', '<|', '<s', '/s>', '<<|end|>>', '<|<|user|>|>', '<|END|>', '< s>'];
  let s = rand() < 0.3 ? pick(ws) : '';
  const n = 1 + int(6);
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (r < 0.5) s += pick(specials);
    else if (r < 0.65) s += pick(partial);
    else s += rand() < 0.5 ? pick(words) : sentence();
    s += pick(ws);
  }
  return s;
}
function chatText() {
  let s = rand() < 0.5 ? '<s>' : '';
  if (rand() < 0.5) s += `<|system|>\n${sentence()}<|end|>\n`;
  const turns = 1 + int(3);
  for (let i = 0; i < turns; i++) {
    s += `<|user|>\n${rand() < 0.3 ? code() : prose()}<|end|>\n<|assistant|>\n`;
    if (i + 1 < turns) s += `${prose()}<|end|>\n`;
  }
  return s;
}

function randomCodepoints() {
  const ranges = [[0x20, 0x7e], [0xa0, 0x24f], [0x370, 0x3ff], [0x400, 0x4ff], [0x590, 0x6ff], [0x900, 0x97f],
    [0x3040, 0x30ff], [0x4e00, 0x9fff], [0xac00, 0xd7a3], [0x1f300, 0x1faff], [0x2000, 0x206f], [0x0, 0x1f]];
  let s = '';
  const n = 1 + int(30);
  for (let i = 0; i < n; i++) {
    const [a, b] = pick(ranges);
    s += String.fromCodePoint(a + int(b - a + 1));
  }
  return s;
}

const generators = [
  [prose, 400], [code, 300], [whitespace, 200], [cjkText, 150], [emojiText, 150], [marksText, 150],
  [rareText, 150], [invalidLooking, 150], [specialText, 400], [chatText, 100], [randomCodepoints, 200],
];
const corpus = ['', ' ', '  ', '\n', 'a', 'Hello world', ' Hello', 'Hello ', '<|user|>', '<|user|>\n',
  '\n<|user|>\nHi<|end|>\n<|assistant|>\n', '<s>', '</s>', '<s> <s>', '<|end|>', '<|endoftext|>  x', '▁', '\u00e9'];
for (const [gen, count] of generators) for (let i = 0; i < count; i++) corpus.push(gen());
for (let i = 0; i < 200; i++) {  // mixtures
  let s = '';
  const n = 2 + int(4);
  for (let k = 0; k < n; k++) s += pick(generators)[0]();
  corpus.push(s);
}
for (let i = 0; i < 5; i++) {  // long strings
  let s = '';
  while (s.length < 4000 + int(4000)) s += pick(generators)[0]() + pick([' ', '\n', '']);
  corpus.push(s);
}

// Token sequences for detokenization: random ids, byte-token runs (valid and
// broken UTF-8), special and pad tokens, sequences that start with a space piece.
const seqs = [];
const utf8Bytes = (str) => [...Buffer.from(str, 'utf8')].map((b) => b + 3);
for (let i = 0; i < 600; i++) {
  const seq = [];
  const n = 1 + int(24);
  for (let k = 0; k < n; k++) {
    const r = rand();
    if (r < 0.35) seq.push(int(32064));
    else if (r < 0.55) seq.push(...utf8Bytes(pick([...emoji, ...cjk, ...marks])));
    else if (r < 0.65) seq.push(3 + int(256));
    else if (r < 0.75) seq.push(pick([0, 1, 2, 32000, 32001, 32006, 32007, 32010, 32011, 32063]));
    else seq.push(pick([29871, 259, 13, 15043, 3186, 1, 2]));
  }
  seqs.push(seq);
}

const [corpusOut, seqsOut] = process.argv.slice(2);
if (!corpusOut || !seqsOut) {
  console.error('usage: tokenize_corpus.mjs CORPUS_OUT SEQS_OUT');
  process.exit(2);
}
fs.writeFileSync(corpusOut, corpus.map((s) => Buffer.from(s, 'utf8').toString('hex')).join('\n') + '\n');
fs.writeFileSync(seqsOut, seqs.map((s) => s.join(' ')).join('\n') + '\n');
console.log(`tokenize_corpus: ${corpus.length} strings, ${seqs.length} id sequences`);
