// The phi3.v1.Phi3 API as the language server uses it: streamed Generate and
// Chat calls that can be cancelled, and prefill-only warm-ups. Stubs are
// generated at run time from phi3.proto (next to the bundle, or PHI3_PROTO).
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { Settings } from "./config";

const WARMUP_DEADLINE_FACTOR = 10;

export interface Usage { prompt_tokens: number; cached_prompt_tokens: number; completion_tokens: number }
export interface Timings { queue_ms: number; ttft_ms: number; total_ms: number }

// What one call produced, also when it was cancelled.
export interface CallResult {
  text: string;
  finishReason: string;      // e.g. "FINISH_REASON_STOP"; "" if the call ended without one
  usage: Usage | null;
  costUsd: number;
  timings: Timings | null;
  firstTextMs: number | null;  // call start -> first non-empty text chunk, measured here
  cancelled: boolean;
  error: string | null;      // "CODE: details" when the call failed
}

export interface Sampling { temperature: number; seed?: number }

export interface GenerateParams {
  prompt: string;
  maxTokens: number;
  sampling: Sampling;
  stop: string[];
  prefillOnly?: boolean;
}

export interface ChatMessage { role: "ROLE_SYSTEM" | "ROLE_USER" | "ROLE_ASSISTANT"; content: string }

// A call in flight. `onText` sees each chunk's text; cancel() ends it at once
// (the server frees its slot within one engine step).
export interface Call {
  done: Promise<CallResult>;
  cancel(): void;
}

function findProto(): string {
  const candidates = [
    process.env.PHI3_PROTO ?? "",
    path.join(__dirname, "phi3.proto"),                          // next to the bundle (dist/, .vsix)
    path.join(__dirname, "../../../proto/phi3/v1/phi3.proto"),  // the repository
  ];
  for (const c of candidates) if (c && fs.existsSync(c)) return c;
  throw new Error(`phi3.proto not found (looked in ${candidates.filter((c) => c).join(", ")}); set PHI3_PROTO`);
}

export class Phi3Client {
  private readonly stub: any;
  private readonly metadata: grpc.Metadata;
  private readonly timeoutMs: number;

  constructor(settings: Settings, routeKey: string) {
    const definition = protoLoader.loadSync(findProto(), {
      keepCase: true, enums: String, defaults: true, longs: Number, oneofs: true,
    });
    const api = grpc.loadPackageDefinition(definition) as any;
    let credentials = grpc.credentials.createInsecure();
    const options: grpc.ChannelOptions = {};
    if (settings.tls) {
      const ca = settings.caCert ? fs.readFileSync(settings.caCert) : null;
      credentials = grpc.credentials.createSsl(ca);
      if (settings.tlsServerName) options["grpc.ssl_target_name_override"] = settings.tlsServerName;
    }
    this.stub = new api.phi3.v1.Phi3(settings.addr, credentials, options);
    this.metadata = new grpc.Metadata();
    if (settings.apiKey) this.metadata.set("authorization", `Bearer ${settings.apiKey}`);
    if (routeKey) this.metadata.set("x-phi3-route-key", routeKey);
    this.timeoutMs = settings.timeoutMs;
  }

  close(): void {
    this.stub.close();
  }

  // Warm-ups run in the background: their deadline is WARMUP_DEADLINE_FACTOR
  // times the completion timeout (a cold prefill of a long window is slow on
  // a busy CPU server, and what it computed stays cached even if it expires).
  generate(p: GenerateParams, onText: (text: string) => void): Call {
    const request = {
      prompt: p.prompt,
      sampling: { temperature: p.sampling.temperature, seed: p.sampling.seed ?? 0 },
      stop: { max_tokens: p.maxTokens, stop: p.stop },
      prefill_only: p.prefillOnly ?? false,
    };
    const timeoutMs = this.timeoutMs * (p.prefillOnly ? WARMUP_DEADLINE_FACTOR : 1);
    return this.stream((m, o) => this.stub.Generate(request, m, o), onText, timeoutMs);
  }

  chat(messages: ChatMessage[], maxTokens: number, temperature: number,
       onText: (text: string) => void): Call {
    const request = { messages, sampling: { temperature }, stop: { max_tokens: maxTokens } };
    return this.stream((m, o) => this.stub.Chat(request, m, o), onText, this.timeoutMs);
  }

  private stream(start: (m: grpc.Metadata, o: grpc.CallOptions) => grpc.ClientReadableStream<any>,
                 onText: (text: string) => void, timeoutMs: number): Call {
    const began = Date.now();
    const result: CallResult = {
      text: "", finishReason: "", usage: null, costUsd: 0, timings: null, firstTextMs: null,
      cancelled: false, error: null,
    };
    const call = start(this.metadata, { deadline: new Date(began + timeoutMs) });
    const done = new Promise<CallResult>((resolve) => {
      call.on("data", (chunk: any) => {
        if (chunk.text) {
          if (result.firstTextMs === null) result.firstTextMs = Date.now() - began;
          result.text += chunk.text;
          onText(chunk.text);
        }
        if (chunk.finish_reason && chunk.finish_reason !== "FINISH_REASON_UNSPECIFIED") {
          result.finishReason = chunk.finish_reason;
          result.usage = chunk.usage;
          result.costUsd = chunk.cost_usd;
          result.timings = chunk.timings;
        }
      });
      call.on("error", (e: grpc.ServiceError) => {
        if (e.code === grpc.status.CANCELLED) {
          result.cancelled = true;
        } else {
          result.error = `${grpc.status[e.code]}: ${e.details}`;
        }
        resolve(result);
      });
      call.on("end", () => resolve(result));
    });
    return {
      done,
      cancel: () => {
        result.cancelled = true;
        call.cancel();
      },
    };
  }
}
