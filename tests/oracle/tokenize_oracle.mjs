// Tokenizes a corpus with llama.cpp (prebuilt, through node-llama-cpp) for the
// tokenizer conformance test.
//   node tests/oracle/tokenize_oracle.mjs MODEL.gguf CORPUS SEQS OUT VOCAB_SIZE
// CORPUS: hex UTF-8 strings, one per line; SEQS: token id sequences.
// node-llama-cpp's model.tokenize(text, special) is llama_tokenize(text,
// add_special = false, parse_special = special); model.detokenize(ids, special)
// is llama_detokenize(ids, remove_special = false, unparse_special = special),
// returned as a JS string (invalid UTF-8 replaced by U+FFFD).
// OUT lines (hex = UTF-8 bytes in hex):
//   T <TAB> ids(special=false) <TAB> ids(special=true) <TAB>
//       hex(detokenize(ids(false), false)) <TAB> hex(detokenize(ids(true), true))
//   D <TAB> hex(detokenize(seq, false)) <TAB> hex(detokenize(seq, true))
//   EOG <TAB> ids of every end-of-generation token
//   ATTR <TAB> llama_token_attr of every token
import fs from 'node:fs';
import {getLlama} from 'node-llama-cpp';

const [modelPath, corpusPath, seqsPath, outPath, vocabSizeArg] = process.argv.slice(2);
if (!vocabSizeArg) {
  console.error('usage: tokenize_oracle.mjs MODEL CORPUS SEQS OUT VOCAB_SIZE');
  process.exit(2);
}
// node-llama-cpp first tries a full load to estimate memory use; on a
// vocab-only file that attempt fails with "missing tensor" (harmless), so those
// two messages are dropped.
const quiet = /missing tensor 'token_embd.weight'|failed to load model/;
const llama = await getLlama({
  gpu: false, build: 'never', logLevel: 'error',
  logger: (level, message) => { if (!quiet.test(message)) process.stderr.write(`[llama.cpp] ${message}\n`); },
});
const model = await llama.loadModel({modelPath, vocabOnly: true, gpuLayers: 0, ignoreMemorySafetyChecks: true});

const hex = (s) => Buffer.from(s, 'utf8').toString('hex');
const lines = [];
const corpus = fs.readFileSync(corpusPath, 'utf8').replace(/\n$/, '').split('\n');
for (const h of corpus) {
  const text = Buffer.from(h, 'hex').toString('utf8');
  if (hex(text) !== h) throw new Error(`corpus line is not valid UTF-8: ${h}`);
  const plain = model.tokenize(text, false);
  const special = model.tokenize(text, true);
  lines.push(['T', plain.join(' '), special.join(' '), hex(model.detokenize(plain, false)),
    hex(model.detokenize(special, true))].join('\t'));
}
const seqs = fs.readFileSync(seqsPath, 'utf8').replace(/\n$/, '').split('\n');
for (const line of seqs) {
  const ids = line.split(' ').filter((s) => s !== '').map(Number);
  lines.push(['D', hex(model.detokenize(ids, false)), hex(model.detokenize(ids, true))].join('\t'));
}
const vocabSize = Number(vocabSizeArg);
const eog = [];
const attrs = [];
for (let id = 0; id < vocabSize; id++) {
  if (model.isEogToken(id)) eog.push(id);
  attrs.push(model._model.getTokenAttributes(id));
}
lines.push(`EOG\t${eog.join(' ')}`);
lines.push(`ATTR\t${attrs.join(' ')}`);
fs.writeFileSync(outPath, lines.join('\n') + '\n');
await model.dispose();
console.log(`tokenize_oracle: ${corpus.length} strings, ${seqs.length} sequences, vocab ${vocabSize}`);
