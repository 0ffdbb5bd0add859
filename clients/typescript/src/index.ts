// A typed client for phi3.v1.Phi3 over @grpc/grpc-js. The service is loaded at
// run time from the package's copy of the .proto; its TypeScript types are
// generated from the same file at build time (src/generated, build.js).
//
//   const client = new Phi3Client("127.0.0.1:50051", { apiKey, tls: true, caCertFile: "ca.pem" });
//   const stream = client.generate({ prompt: "Once upon a time", stop: { max_tokens: 32 } });
//   for await (const chunk of stream) process.stdout.write(chunk.text);
//   console.log(stream.completion.finish_reason, stream.completion.usage);
//   client.close();
import * as fs from "fs";
import * as path from "path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { ProtoGrpcType } from "./generated/phi3";
import type { Phi3Client as Phi3Stub } from "./generated/phi3/v1/Phi3";
import type { ChatRequest } from "./generated/phi3/v1/ChatRequest";
import type { GenerateRequest } from "./generated/phi3/v1/GenerateRequest";
import type { GenerateResponse__Output } from "./generated/phi3/v1/GenerateResponse";
import type { GetModelInfoResponse__Output } from "./generated/phi3/v1/GetModelInfoResponse";
import type { TokenizeRequest } from "./generated/phi3/v1/TokenizeRequest";

export type { Phi3Stub, ChatRequest, GenerateRequest, GenerateResponse__Output,
              GetModelInfoResponse__Output, TokenizeRequest };
export type { ChatMessage } from "./generated/phi3/v1/ChatMessage";
export type { SamplingOptions } from "./generated/phi3/v1/SamplingOptions";
export type { StopOptions } from "./generated/phi3/v1/StopOptions";

export const DEFAULT_ADDRESS = "127.0.0.1:50051";
// The package's copy of the API (build.js puts it there).
export const PROTO_FILE = path.join(__dirname, "../proto/phi3/v1/phi3.proto");

export interface ConnectOptions {
  // Sent as `authorization: Bearer KEY` (default: $PHI3_API_KEY).
  apiKey?: string;
  // Connect with TLS, verified against caCertFile (PEM) or the system's roots.
  tls?: boolean;
  caCertFile?: string;  // implies tls
  // The name checked in the server's certificate (implies tls).
  tlsServerName?: string;
  // Sent as x-phi3-route-key: behind the fleet router, calls with the same
  // key go to the same replica and its prefix cache.
  routeKey?: string;
  // Deadline of each call.
  timeoutMs?: number;
}

// The whole call once the stream has ended; JSON.stringify gives the object
// phi3-client --json prints (same keys, same order).
export interface Completion {
  text: string;
  completion_tokens: number[];
  finish_reason: string;  // STOP, LENGTH, STOP_SEQUENCE, CANCELLED, DEADLINE, ERROR
  usage: { prompt_tokens: number; cached_prompt_tokens: number; completion_tokens: number };
  cost_usd: number;
  timings: { queue_ms: number; ttft_ms: number; total_ms: number };
}

// A failed call: the gRPC status code and the server's message.
export class Phi3Error extends Error {
  constructor(readonly code: grpc.status, readonly details: string) {
    super(`${grpc.status[code]}: ${details}`);
    this.name = "Phi3Error";
  }
}

// Iterate (for await) for the streamed chunks; `completion` is complete once
// the iteration ends. cancel() stops the generation within one engine step.
export class Stream implements AsyncIterable<GenerateResponse__Output> {
  readonly completion: Completion = {
    text: "", completion_tokens: [], finish_reason: "",
    usage: { prompt_tokens: 0, cached_prompt_tokens: 0, completion_tokens: 0 },
    cost_usd: 0, timings: { queue_ms: 0, ttft_ms: 0, total_ms: 0 },
  };

  constructor(private readonly call: grpc.ClientReadableStream<GenerateResponse__Output>) {}

  async *[Symbol.asyncIterator](): AsyncIterator<GenerateResponse__Output> {
    const done = this.completion;
    try {
      for await (const chunk of this.call as AsyncIterable<GenerateResponse__Output>) {
        done.text += chunk.text;
        done.completion_tokens.push(...chunk.token_ids);
        if (chunk.finish_reason !== "FINISH_REASON_UNSPECIFIED") {
          done.finish_reason = String(chunk.finish_reason).replace(/^FINISH_REASON_/, "");
          const u = chunk.usage, t = chunk.timings;
          done.usage = { prompt_tokens: u?.prompt_tokens ?? 0,
                         cached_prompt_tokens: u?.cached_prompt_tokens ?? 0,
                         completion_tokens: u?.completion_tokens ?? 0 };
          done.cost_usd = chunk.cost_usd;
          done.timings = { queue_ms: t?.queue_ms ?? 0, ttft_ms: t?.ttft_ms ?? 0,
                           total_ms: t?.total_ms ?? 0 };
        }
        yield chunk;
      }
    } catch (e) {
      throw asPhi3Error(e);
    }
  }

  // Reads the rest of the stream and returns the completion.
  async collect(): Promise<Completion> {
    for await (const _ of this) { /* the iterator fills in `completion` */ }
    return this.completion;
  }

  cancel(): void {
    this.call.cancel();
  }
}

function asPhi3Error(e: unknown): unknown {
  const s = e as Partial<grpc.ServiceError>;
  return typeof s.code === "number" ? new Phi3Error(s.code, s.details ?? "") : e;
}

let loaded: ProtoGrpcType | undefined;
function api(): ProtoGrpcType {
  // The same options as build.js passes to proto-loader-gen-types.
  loaded ??= grpc.loadPackageDefinition(protoLoader.loadSync(PROTO_FILE, {
    keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true,
  })) as unknown as ProtoGrpcType;
  return loaded;
}

// A connection to one phi3-server (or the fleet router).
export class Phi3Client {
  // The generated stub, for anything the methods below do not cover.
  readonly stub: Phi3Stub;
  private readonly metadata = new grpc.Metadata();

  constructor(address: string = DEFAULT_ADDRESS, private readonly options: ConnectOptions = {}) {
    const tls = options.tls || options.caCertFile !== undefined ||
                options.tlsServerName !== undefined;
    const credentials = tls
        ? grpc.credentials.createSsl(options.caCertFile ? fs.readFileSync(options.caCertFile)
                                                        : null)
        : grpc.credentials.createInsecure();
    const channelOptions: grpc.ChannelOptions = options.tlsServerName
        ? { "grpc.ssl_target_name_override": options.tlsServerName,
            "grpc.default_authority": options.tlsServerName }
        : {};
    this.stub = new (api().phi3.v1.Phi3)(address, credentials, channelOptions);
    const key = options.apiKey ?? process.env.PHI3_API_KEY ?? "";
    if (key) this.metadata.set("authorization", `Bearer ${key}`);
    if (options.routeKey) this.metadata.set("x-phi3-route-key", options.routeKey);
  }

  // Streams a completion of a raw prompt.
  generate(request: GenerateRequest): Stream {
    return new Stream(this.stub.Generate(request, this.metadata, this.callOptions()));
  }

  // Streams the assistant's reply to a conversation.
  chat(request: ChatRequest): Stream {
    return new Stream(this.stub.Chat(request, this.metadata, this.callOptions()));
  }

  tokenize(request: TokenizeRequest): Promise<number[]> {
    return new Promise((resolve, reject) => {
      this.stub.Tokenize(request, this.metadata, this.callOptions(), (e, r) =>
          e || !r ? reject(asPhi3Error(e)) : resolve(r.token_ids));
    });
  }

  // The model, the engine's limits, prices and the server's version.
  info(): Promise<GetModelInfoResponse__Output> {
    return new Promise((resolve, reject) => {
      this.stub.GetModelInfo({}, this.metadata, this.callOptions(), (e, r) =>
          e || !r ? reject(asPhi3Error(e)) : resolve(r));
    });
  }

  close(): void {
    this.stub.close();
  }

  private callOptions(): grpc.CallOptions {
    return this.options.timeoutMs === undefined
        ? {} : { deadline: new Date(Date.now() + this.options.timeoutMs) };
  }
}
