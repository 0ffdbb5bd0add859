// Streams a completion from phi3-server with the phi3serve-client package.
// `node dist/example.js --help` lists the options. Exit codes: 0 ok, 1 the
// call failed ("CODE: message" on stderr), 2 bad usage.
import { parseArgs } from "util";
import { DEFAULT_ADDRESS, Phi3Client } from "./index";

const USAGE = `Usage: node dist/example.js [options]

Streams a completion of --prompt from phi3-server.

Options:
  --addr HOST:PORT         server address (default ${DEFAULT_ADDRESS})
  --api-key KEY            sent as 'authorization: Bearer KEY' (default $PHI3_API_KEY)
  --tls                    connect with TLS (the system's CA roots)
  --ca-cert FILE           PEM CA certificate that signed the server's (implies --tls)
  --tls-server-name NAME   name to check in the server's certificate (implies --tls)
  --prompt TEXT            the raw prompt (default "Hello")
  --max-tokens N           completion tokens at most (default 32)
  --temperature T          0 = greedy (default 0)
  --seed S                 random seed (default 0)
  --timeout SECONDS        deadline of the call (default 60)
  --json                   print one JSON object (as phi3-client --json) instead of the text
  --help                   print this help and exit
`;

function parse() {
  try {
    return parseArgs({
      options: {
        "addr": { type: "string", default: DEFAULT_ADDRESS },
        "api-key": { type: "string" },
        "tls": { type: "boolean", default: false },
        "ca-cert": { type: "string" },
        "tls-server-name": { type: "string" },
        "prompt": { type: "string", default: "Hello" },
        "max-tokens": { type: "string", default: "32" },
        "temperature": { type: "string", default: "0" },
        "seed": { type: "string", default: "0" },
        "timeout": { type: "string", default: "60" },
        "json": { type: "boolean", default: false },
        "help": { type: "boolean", default: false },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`example: ${(e as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
}

function numberFlag(value: string, name: string): number {
  const n = Number(value);
  if (value.trim() === "" || !Number.isFinite(n)) {
    process.stderr.write(`example: --${name} needs a number, got '${value}'\n`);
    process.exit(2);
  }
  return n;
}

async function main(): Promise<number> {
  const flags = parse();
  if (flags.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const client = new Phi3Client(flags.addr, {
    apiKey: flags["api-key"], tls: flags.tls, caCertFile: flags["ca-cert"],
    tlsServerName: flags["tls-server-name"],
    timeoutMs: numberFlag(flags.timeout!, "timeout") * 1000,
  });
  const stream = client.generate({
    prompt: flags.prompt,
    sampling: { temperature: numberFlag(flags.temperature!, "temperature"),
                seed: numberFlag(flags.seed!, "seed") },
    stop: { max_tokens: numberFlag(flags["max-tokens"]!, "max-tokens") },
  });
  try {
    for await (const chunk of stream) {
      if (!flags.json) process.stdout.write(chunk.text);
    }
  } catch (e) {
    process.stderr.write(`\n${(e as Error).message}\n`);
    return 1;
  } finally {
    client.close();
  }
  const done = stream.completion;
  if (flags.json) {
    console.log(JSON.stringify(done));
  } else {
    console.log(`\n[${done.finish_reason}, ${done.usage.completion_tokens} tokens, ` +
                `$${done.cost_usd.toFixed(8)}]`);
  }
  return 0;
}

main().then((code) => { process.exitCode = code; });
