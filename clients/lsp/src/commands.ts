// workspace/executeCommand: explain or fix the selection through the Chat
// RPC, streamed to the client as $/progress reports. The command's result is
// a document to read (explain) or a WorkspaceEdit the client offers to apply
// (fix); the server never edits on its own.
//
//   phi3.explain  [{ uri, range }]                  -> { kind: "explanation", markdown, ... }
//   phi3.fix      [{ uri, range, instruction? }]    -> { kind: "edit", edit, markdown, ... }
import { TextDocument } from "vscode-languageserver-textdocument";
import { Range, WorkspaceEdit } from "vscode-languageserver";
import { ChatMessage, Phi3Client } from "./phi3_client";
import { Session } from "./session";
import { Cancellable, fileNameOf } from "./completer";

export const COMMANDS = ["phi3.explain", "phi3.fix"];

export interface CommandArgs { uri: string; range: Range; instruction?: string }

export interface Progress {
  begin(title: string, percentage?: number, message?: string, cancellable?: boolean): void;
  report(message: string): void;
  done(): void;
  token?: Cancellable;
}

export interface CommandResult {
  kind: "explanation" | "edit" | "error";
  markdown: string;           // the model's full answer
  edit?: WorkspaceEdit;       // fix: replaces the selection with the answer's code
  error?: string;
  usage?: unknown;
  costUsd?: number;
}

const REPORT_MS = 100;
const SYSTEM = "You are a concise coding assistant inside a code editor.";

export function chatMessages(command: string, code: string, languageId: string, fileName: string,
                             instruction: string): ChatMessage[] {
  const fence = "```" + languageId + "\n" + code + (code.endsWith("\n") ? "" : "\n") + "```";
  const ask = command === "phi3.explain"
    ? `Explain what this ${languageId} code from ${fileName} does, briefly.\n\n${fence}`
    : `${instruction || "Fix the bugs in this code and improve it"}. Reply with the corrected ` +
      `${languageId} code from ${fileName} in one code block, then at most two sentences.\n\n${fence}`;
  return [{ role: "ROLE_SYSTEM", content: SYSTEM }, { role: "ROLE_USER", content: ask }];
}

// The first fenced code block of a reply, else the whole reply.
export function codeOf(reply: string): string {
  const m = /```[^\n]*\n([\s\S]*?)```/.exec(reply);
  return (m ? m[1] : reply).replace(/\n$/, "");
}

export async function runCommand(command: string, args: CommandArgs, doc: TextDocument | undefined,
                                 client: Phi3Client, session: Session, progress: Progress,
                                 token: Cancellable, maxTokens: number,
                                 temperature: number): Promise<CommandResult> {
  if (!COMMANDS.includes(command)) return { kind: "error", markdown: "", error: `unknown command ${command}` };
  if (doc === undefined) return { kind: "error", markdown: "", error: `document ${args.uri} is not open` };
  const code = doc.getText(args.range);
  if (code.trim().length === 0) return { kind: "error", markdown: "", error: "the selection is empty" };
  const title = command === "phi3.explain" ? "phi3: explaining the selection" : "phi3: fixing the selection";
  progress.begin(title, undefined, "", true);
  session.begin();
  // Each report carries the answer so far, at most every REPORT_MS.
  let text = "";
  let reported = 0;
  let lastReport = 0;
  const call = client.chat(
    chatMessages(command, code, doc.languageId, fileNameOf(doc.uri), args.instruction ?? ""),
    maxTokens, temperature, (chunk) => {
      text += chunk;
      if (Date.now() - lastReport >= REPORT_MS) {
        lastReport = Date.now();
        reported = text.length;
        progress.report(text);
      }
    });
  token.onCancellationRequested(() => call.cancel());
  progress.token?.onCancellationRequested(() => call.cancel());
  const r = await call.done;
  if (reported < text.length) progress.report(text);
  progress.done();
  session.end("command", r);
  if (r.error) return { kind: "error", markdown: r.text, error: r.error };
  if (r.cancelled) return { kind: "error", markdown: r.text, error: "cancelled" };
  const base = { markdown: r.text, usage: r.usage, costUsd: r.costUsd };
  if (command === "phi3.explain") return { kind: "explanation", ...base };
  return {
    kind: "edit", ...base,
    edit: { changes: { [args.uri]: [{ range: args.range, newText: codeOf(r.text) }] } },
  };
}
