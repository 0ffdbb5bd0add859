// Completions and warm-ups, latest wins.
//
// One slot: at most one completion or warm-up call is in flight. A newer
// completion request cancels the call in flight at once (the server frees its
// slot within one engine step) and the older request answers null; so does a
// request the client cancels ($/cancelRequest). A request that comes within
// debounceMs of the previous one waits debounceMs for a newer one before
// calling the server, so a burst of keystrokes makes one call; one that comes
// later (the user types slower than that, or paused) calls at once: waiting
// could merge nothing, and a request superseded anyway costs the server
// little (the step of a call cancelled mid-way is dropped between layers). An
// answer computed for an older version of the document than the current one
// is dropped (null): nothing stale is ever offered.
//
// Warm-up: on open, and debouncedly after edits, a prefill-only call sends the
// prompt a completion at the edit would start with, so that the completion
// itself only computes its new tokens. A warm-up never cancels a completion
// and is skipped while one is pending; a completion cancels a warm-up (the
// blocks it computed so far stay cached).
import { TextDocument } from "vscode-languageserver-textdocument";
import { Settings } from "./config";
import { Call, CallResult, Phi3Client } from "./phi3_client";
import { buildPrompt, CHARS_PER_TOKEN, header, PromptParts, splitLines } from "./prompt";
import { indentWidth, StopContext, stopStrings, trimCompletion } from "./postprocess";
import { Session } from "./session";

export interface Position { line: number; character: number }

export interface Cancellable {
  isCancellationRequested: boolean;
  onCancellationRequested(listener: () => void): unknown;
}

// What a completion needs to know about the document.
export interface CompletionSite {
  prompt: PromptParts;
  ctx: StopContext;
}

export function completionSite(doc: TextDocument, pos: Position, s: Settings): CompletionSite {
  const lines = splitLines(doc.getText());
  const prompt = buildPrompt(lines, pos.line, pos.character, fileNameOf(doc.uri), doc.languageId,
                             s.contextTokens);
  const ctx: StopContext = {
    restOfLine: prompt.restOfLine,
    following: prompt.following,
    indent: indentWidth(lines[pos.line] ?? ""),
    maxLines: s.maxLines,
  };
  return { prompt, ctx };
}

// Where a completion sends the longest window that starts at the top of the
// document: the warm-up position of a freshly opened file.
export function openWarmupPosition(doc: TextDocument, s: Settings): Position {
  const lines = splitLines(doc.getText());
  let budget = s.contextTokens * CHARS_PER_TOKEN - header(fileNameOf(doc.uri), doc.languageId).length;
  for (let line = 0; line < lines.length; ++line) {
    budget -= lines[line].length + 1;
    if (budget < 0) return { line, character: 0 };
  }
  return { line: lines.length - 1, character: lines[lines.length - 1].length };
}

export function fileNameOf(uri: string): string {
  const p = decodeURIComponent(uri.replace(/^[a-z]+:\/\//i, ""));
  return p.slice(p.lastIndexOf("/") + 1);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export class Completer {
  private latest = 0;  // id of the newest completion request
  private lastReceived = -Infinity;  // when it arrived (Date.now())
  private inflight: { call: Call; kind: "completion" | "warmup" } | null = null;
  private pending = 0;  // completion requests not answered yet
  private readonly warmTimers = new Map<string, NodeJS.Timeout>();
  private readonly lastPrompt = new Map<string, string>();  // uri -> last prompt sent

  constructor(private readonly client: () => Phi3Client,
              private readonly settings: () => Settings,
              private readonly currentVersion: (uri: string) => number | undefined,
              private readonly session: Session) {}

  // The completion text at `pos` ("" when there is nothing to offer), or null
  // when the request was superseded, cancelled or became stale.
  async complete(doc: TextDocument, pos: Position, token: Cancellable): Promise<string | null> {
    const received = Date.now();
    const burst = received - this.lastReceived < this.settings().debounceMs;
    this.lastReceived = received;
    const id = ++this.latest;
    ++this.pending;
    try {
      this.cancelInflight();
      const s = this.settings();
      if (burst) await sleep(s.debounceMs);
      if (id !== this.latest || token.isCancellationRequested) {
        this.session.superseded();
        return null;
      }
      const version = doc.version;
      const site = completionSite(doc, pos, s);
      this.lastPrompt.set(doc.uri, site.prompt.prompt);
      let raw = "";
      let stoppedEarly = false;
      let firstTokenMs: number | null = null;
      this.session.begin();
      const call = this.client().generate(
        { prompt: site.prompt.prompt, maxTokens: s.maxTokens, sampling: { temperature: s.temperature },
          stop: stopStrings(site.ctx) },
        (text) => {
          if (firstTokenMs === null) firstTokenMs = Date.now() - received;
          raw += text;
          if (!stoppedEarly && trimCompletion(raw, site.ctx, false).done) {
            stoppedEarly = true;  // the answer is known: free the server's slot
            call.cancel();
          }
        });
      this.inflight = { call, kind: "completion" };
      token.onCancellationRequested(() => call.cancel());
      const r = await call.done;
      if (this.inflight?.call === call) this.inflight = null;
      const superseded = id !== this.latest || token.isCancellationRequested;
      const stale = this.currentVersion(doc.uri) !== version;
      if ((r.cancelled && !stoppedEarly) || superseded || stale || r.error) {
        this.session.end(r.error ? "completion" : "cancelled", r);
        return r.error && !superseded && !stale ? "" : null;
      }
      this.session.end("completion", r, { latencyMs: Date.now() - received, firstTokenMs });
      return trimCompletion(r.text, site.ctx, true).text;
    } finally {
      --this.pending;
    }
  }

  // Schedules a warm-up of the prompt a completion at `pos` would send.
  scheduleWarmup(doc: TextDocument, pos: Position): void {
    const s = this.settings();
    if (!s.warmup) return;
    clearTimeout(this.warmTimers.get(doc.uri));
    this.warmTimers.set(doc.uri, setTimeout(() => {
      this.warmTimers.delete(doc.uri);
      this.warmup(doc, pos);
    }, s.warmupDebounceMs));
  }

  // Warms the document's prefix now; resolves with the call's result (null
  // when skipped: a completion is pending or the prompt was already sent).
  warmup(doc: TextDocument, pos: Position): Promise<CallResult | null> {
    if (this.pending > 0 || this.inflight !== null) return Promise.resolve(null);
    const site = completionSite(doc, pos, this.settings());
    const prompt = site.prompt.prompt;
    if (prompt.length === 0 || this.lastPrompt.get(doc.uri)?.startsWith(prompt)) {
      return Promise.resolve(null);
    }
    this.lastPrompt.set(doc.uri, prompt);
    this.session.begin();
    const call = this.client().generate(
      { prompt, maxTokens: 1, sampling: { temperature: 0 }, stop: [], prefillOnly: true }, () => {});
    this.inflight = { call, kind: "warmup" };
    return call.done.then((r) => {
      if (this.inflight?.call === call) this.inflight = null;
      if (r.cancelled) this.lastPrompt.delete(doc.uri);
      this.session.end("warmup", r);
      return r;
    });
  }

  forget(uri: string): void {
    clearTimeout(this.warmTimers.get(uri));
    this.warmTimers.delete(uri);
    this.lastPrompt.delete(uri);
  }

  private cancelInflight(): void {
    if (this.inflight === null) return;
    this.inflight.call.cancel();
    this.inflight = null;
  }
}
