// Drives phi3-server's OpenAI-compatible HTTP API with the official OpenAI
// SDK and prints what it got as one JSON object (tests/integration/openai_test.cc
// checks it against the gRPC API of the same server).
//
//   node openai_check.mjs --base-url http://127.0.0.1:PORT/v1 --key KEY \
//        --prompt TEXT --user TEXT --max-tokens N
import OpenAI from "openai";

function parseArgs(argv) {
  const args = {};
  for (let i = 2; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || i + 1 >= argv.length) {
      throw new Error(`expected --name value pairs, got ${argv[i]}`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  for (const name of ["base-url", "key", "prompt", "user", "max-tokens"]) {
    if (!(name in args)) throw new Error(`--${name} is required`);
  }
  return args;
}

const args = parseArgs(process.argv);
const maxTokens = Number(args["max-tokens"]);
const client = new OpenAI({ baseURL: args["base-url"], apiKey: args.key, maxRetries: 0 });
const chatMessages = [
  { role: "system", content: "Be brief." },
  { role: "user", content: args.user },
];
const out = {};

const models = await client.models.list();
out.models = models.data.map((m) => m.id);

const completion = await client.completions.create({
  model: out.models[0], prompt: args.prompt, max_tokens: maxTokens, temperature: 0,
});
out.completion = {
  text: completion.choices[0].text,
  finish_reason: completion.choices[0].finish_reason,
  usage: completion.usage,
};

async function collect(stream, textOf) {
  const result = { text: "", chunks: 0, finish_reason: null, usage: null };
  for await (const chunk of stream) {
    result.chunks += 1;
    if (chunk.usage) result.usage = chunk.usage;
    for (const choice of chunk.choices) {
      result.text += textOf(choice) ?? "";
      if (choice.finish_reason) result.finish_reason = choice.finish_reason;
    }
  }
  return result;
}

out.completion_stream = await collect(
  await client.completions.create({
    model: out.models[0], prompt: args.prompt, max_tokens: maxTokens, temperature: 0,
    stream: true, stream_options: { include_usage: true },
  }),
  (choice) => choice.text);

const chat = await client.chat.completions.create({
  model: out.models[0], messages: chatMessages, max_tokens: maxTokens, temperature: 0,
});
out.chat = {
  text: chat.choices[0].message.content,
  role: chat.choices[0].message.role,
  finish_reason: chat.choices[0].finish_reason,
  usage: chat.usage,
};

out.chat_stream = await collect(
  await client.chat.completions.create({
    model: out.models[0], messages: chatMessages, max_completion_tokens: maxTokens,
    temperature: 0, stream: true, stream_options: { include_usage: true },
  }),
  (choice) => choice.delta.content);

try {
  const wrong = new OpenAI({ baseURL: args["base-url"], apiKey: "not-a-key", maxRetries: 0 });
  await wrong.chat.completions.create({ model: out.models[0], messages: chatMessages });
  out.bad_key = { status: 200 };
} catch (e) {
  out.bad_key = { status: e.status, type: e.constructor.name, message: e.message };
}

try {
  await client.completions.create({ model: out.models[0], prompt: "x", temperature: 9 });
  out.bad_request = { status: 200 };
} catch (e) {
  out.bad_request = { status: e.status, message: e.message };
}

// Disconnect mid-stream: read a few tokens of a long generation, then abort.
const long = await client.completions.create({
  model: out.models[0], prompt: "Disconnect me", max_tokens: 3000, temperature: 0,
  ignore_eos: true, stream: true,
});
let received = 0;
for await (const chunk of long) {
  received += 1;
  if (received >= 3) break;  // leaving the loop aborts the request
}
out.disconnect = { chunks_received: received };

console.log(JSON.stringify(out));
