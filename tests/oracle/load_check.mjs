// Loads GGUF files with llama.cpp (node-llama-cpp, prebuilt CPU libraries)
// and reports what llama.cpp sees: n_vocab (size of its next-token
// distribution), n_ctx_train, n_embd, its type description, and the greedy
// next token after "<s>Hello". Used by the phi3-mkmodel conformance test.
//
//   node load_check.mjs FILE... -> one JSON object per line
import {getLlama} from 'node-llama-cpp';

const llama = await getLlama({gpu: false, build: 'never', logLevel: 'error'});
for (const path of process.argv.slice(2)) {
  const out = {path};
  try {
    const model = await llama.loadModel({modelPath: path});
    out.n_ctx_train = model.trainContextSize;
    out.n_embd = model.embeddingVectorSize;
    out.type = model.typeDescription;
    out.bos = model.tokens.bos;
    out.eos = model.tokens.eos;
    const context = await model.createContext({contextSize: 256, threads: 2});
    const seq = context.getSequence();
    const tokens = model.tokenize('Hello', false);
    const input = [model.tokens.bos, ...tokens];
    const res = await seq.controlledEvaluate(
        input.map((t, i) => i === input.length - 1 ? [t, {generateNext: {probabilities: true}}] : t));
    const probs = res[input.length - 1].next.probabilities;
    out.n_vocab = probs.size;
    out.top_token = probs.keys().next().value;
    await context.dispose();
    await model.dispose();
    out.ok = true;
  } catch (e) {
    out.ok = false;
    out.error = String(e && e.message || e);
  }
  console.log(JSON.stringify(out));
}
