// Session status: what this editor session has used and how fast the last
// completion was, sent to the client as the `phi3/status` notification after
// every call (clients show it in a status bar; the Neovim config in
// :Phi3Status). Usage is what the server reported on finished calls; calls
// cancelled mid-way are billed by the server for the work done but report no
// usage back (the server's metrics and ledger have them).
import { CallResult } from "./phi3_client";

export const STATUS_NOTIFICATION = "phi3/status";

export interface StatusParams {
  state: "idle" | "busy" | "error";
  message: string;              // the last error, or a short description
  requests: number;             // completions answered (with text or empty)
  cancelled: number;            // completions cancelled or superseded
  warmups: number;              // prefill-only calls finished
  promptTokens: number;
  cachedPromptTokens: number;
  completionTokens: number;
  costUsd: number;
  lastLatencyMs: number | null;     // completion request received -> answered
  lastFirstTokenMs: number | null;  // completion request received -> first token of its text
  lastCallFirstTokenMs: number | null;  // the same from the server call's start (without the debounce)
  lastCachedPromptTokens: number | null;
}

export class Session {
  readonly status: StatusParams = {
    state: "idle", message: "", requests: 0, cancelled: 0, warmups: 0, promptTokens: 0,
    cachedPromptTokens: 0, completionTokens: 0, costUsd: 0, lastLatencyMs: null,
    lastFirstTokenMs: null, lastCallFirstTokenMs: null, lastCachedPromptTokens: null,
  };
  private busy = 0;

  constructor(private readonly notify: (s: StatusParams) => void) {}

  // A completion superseded before it called the server: counted, reported
  // with the next status.
  superseded(): void {
    ++this.status.cancelled;
  }

  begin(): void {
    if (this.busy++ === 0) this.publish("busy");
  }

  // A finished call; `kind` says what to count it as.
  end(kind: "completion" | "cancelled" | "warmup" | "command", r: CallResult | null,
      timing?: { latencyMs: number; firstTokenMs: number | null }): void {
    --this.busy;
    const s = this.status;
    if (kind === "completion") ++s.requests;
    if (kind === "cancelled") ++s.cancelled;
    if (kind === "warmup" && r?.usage) ++s.warmups;
    if (r?.usage) {
      s.promptTokens += r.usage.prompt_tokens;
      s.cachedPromptTokens += r.usage.cached_prompt_tokens;
      s.completionTokens += r.usage.completion_tokens;
      s.costUsd += r.costUsd;
    }
    if (kind === "completion" && timing) {
      s.lastLatencyMs = timing.latencyMs;
      s.lastFirstTokenMs = timing.firstTokenMs;
      s.lastCallFirstTokenMs = r?.firstTextMs ?? null;
      s.lastCachedPromptTokens = r?.usage?.cached_prompt_tokens ?? null;
    }
    if (r?.error) {
      s.message = r.error;
      this.publish("error");
    } else {
      this.publish(this.busy > 0 ? "busy" : "idle");
    }
  }

  private publish(state: StatusParams["state"]): void {
    this.status.state = state;
    this.notify({ ...this.status });
  }
}
