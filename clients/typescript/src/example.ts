// Streams a completion from phi3-server with @grpc/grpc-js.
//
//   npm ci && npm run build
//   node dist/example.js --addr 127.0.0.1:50051 --prompt "Once upon a time" [--api-key KEY] [--json]
//
// The stubs are generated at run time from proto/phi3/v1/phi3.proto by
// @grpc/proto-loader (set PHI3_PROTO to point elsewhere).
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

interface Usage { prompt_tokens: number; cached_prompt_tokens: number; completion_tokens: number }
interface Timings { queue_ms: number; ttft_ms: number; total_ms: number }
interface GenerateResponse {
  text: string;
  token_ids: number[];
  finish_reason: string;  // enum name, e.g. "FINISH_REASON_STOP"
  usage: Usage | null;
  cost_usd: number;
  timings: Timings | null;
}

function flag(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

const protoFile = process.env.PHI3_PROTO ?? path.join(__dirname, "../../../proto/phi3/v1/phi3.proto");
const definition = protoLoader.loadSync(protoFile, {
  keepCase: true, enums: String, defaults: true, longs: Number, oneofs: true,
});
const api = grpc.loadPackageDefinition(definition) as any;

const client = new api.phi3.v1.Phi3(flag("addr", "127.0.0.1:50051"), grpc.credentials.createInsecure());
const metadata = new grpc.Metadata();
const apiKey = flag("api-key", "");
if (apiKey) metadata.set("authorization", `Bearer ${apiKey}`);
const json = process.argv.includes("--json");

const request = {
  prompt: flag("prompt", "Hello"),
  sampling: { temperature: Number(flag("temperature", "0")), seed: Number(flag("seed", "0")) },
  stop: { max_tokens: Number(flag("max-tokens", "32")) },
};
const deadline = new Date(Date.now() + 60_000);
const call = client.Generate(request, metadata, { deadline });

let text = "";
const tokens: number[] = [];
let last: GenerateResponse | null = null;
call.on("data", (chunk: GenerateResponse) => {
  text += chunk.text;
  tokens.push(...chunk.token_ids);
  if (!json) process.stdout.write(chunk.text);
  if (chunk.finish_reason !== "FINISH_REASON_UNSPECIFIED") last = chunk;
});
call.on("error", (e: grpc.ServiceError) => {
  console.error(`${grpc.status[e.code]}: ${e.details}`);
  process.exitCode = 1;
});
call.on("end", () => {
  if (!last) return;
  const done: GenerateResponse = last;
  const reason = done.finish_reason.replace(/^FINISH_REASON_/, "");
  if (json) {
    console.log(JSON.stringify({
      text, completion_tokens: tokens, finish_reason: reason,
      usage: done.usage, cost_usd: done.cost_usd, timings: done.timings,
    }));
  } else {
    console.log(`\n[${reason}, ${done.usage?.completion_tokens} tokens, $${done.cost_usd.toFixed(8)}]`);
  }
});
