// phi3-lsp: a code-assistant language server on top of phi3-server's public
// gRPC API (phi3.v1). Works in any LSP client:
//
//   node dist/server.js --stdio [--addr HOST:PORT] [--api-key KEY] [--route-key KEY]
//                       [--tls [--ca-cert FILE] [--tls-server-name NAME]]
//
// The same settings (and maxTokens, commandMaxTokens, temperature, debounceMs, maxLines,
// contextTokens, warmup, warmupDebounceMs) may come as initializationOptions
// or in the "phi3" section of workspace/didChangeConfiguration; flags win.
// The API key may also come from $PHI3_API_KEY. No secret is ever logged.
//
// Features: textDocument/inlineCompletion (LSP 3.18) and textDocument/completion
// (one item holding the continuation), warm-up of the server's prefix cache on
// open and edit, workspace/executeCommand phi3.explain / phi3.fix with
// $/progress, and the phi3/status notification (session usage, cost, latency).
import * as crypto from "crypto";
import {
  CompletionItem, CompletionItemKind, createConnection, InitializeParams, InitializeResult,
  InlineCompletionItem, InsertTextFormat, ProposedFeatures, TextDocuments, TextDocumentSyncKind,
  WorkDoneProgressReporter, WorkDoneProgressServerReporter,
} from "vscode-languageserver/node";
import { TextDocument } from "vscode-languageserver-textdocument";
import { DEFAULTS, describe, merge, parseArgs, sanitize, Settings } from "./config";
import { Completer, openWarmupPosition } from "./completer";
import { CommandArgs, COMMANDS, runCommand } from "./commands";
import { Phi3Client } from "./phi3_client";
import { Session, STATUS_NOTIFICATION } from "./session";

export { buildPrompt, header, splitLines } from "./prompt";
export { stopStrings, trimCompletion } from "./postprocess";
export { completionSite } from "./completer";
export { DEFAULTS } from "./config";

function main(): void {
  const connection = createConnection(ProposedFeatures.all);
  const documents = new TextDocuments(TextDocument);
  const fromArgs = parseArgs(process.argv.slice(2));
  const fromEnv: Partial<Settings> = process.env.PHI3_API_KEY ? { apiKey: process.env.PHI3_API_KEY } : {};
  let fromInit: Partial<Settings> = {};
  let fromConfig: Partial<Settings> = {};
  let settings: Settings = merge(fromEnv, fromArgs);
  let workspaceId = process.cwd();
  let client: Phi3Client | null = null;

  const routeKey = (): string =>
    settings.routeKey || crypto.createHash("sha256").update(workspaceId).digest("hex").slice(0, 16);
  const getClient = (): Phi3Client => {
    if (client === null) client = new Phi3Client(settings, routeKey());
    return client;
  };
  const applySettings = (): void => {
    settings = merge(fromEnv, fromInit, fromConfig, fromArgs);
    client?.close();
    client = null;  // reconnect with the new address, credentials and keys
    connection.console.log(`phi3-lsp settings: ${describe(settings)}`);
  };
  const session = new Session((s) => void connection.sendNotification(STATUS_NOTIFICATION, s));
  const completer = new Completer(getClient, () => settings,
                                  (uri) => documents.get(uri)?.version, session);

  connection.onInitialize((params: InitializeParams): InitializeResult => {
    const problems: string[] = [];
    fromInit = sanitize(params.initializationOptions, problems);
    const root = params.workspaceFolders?.[0]?.uri ?? params.rootUri;
    if (root) workspaceId = root;
    applySettings();
    for (const p of problems) connection.console.warn(`phi3-lsp: ${p}`);
    return {
      capabilities: {
        textDocumentSync: TextDocumentSyncKind.Incremental,
        completionProvider: { resolveProvider: false },
        inlineCompletionProvider: true,
        executeCommandProvider: { commands: COMMANDS },
      },
      serverInfo: { name: "phi3-lsp", version: "0.1.0" },
    };
  });

  connection.onDidChangeConfiguration((change) => {
    const problems: string[] = [];
    const section = (change.settings as Record<string, unknown> | null)?.phi3;
    if (section === undefined) return;
    fromConfig = sanitize(section, problems);
    applySettings();
    for (const p of problems) connection.console.warn(`phi3-lsp: ${p}`);
  });

  const previous = new Map<string, string>();  // uri -> content before the change
  documents.onDidOpen((e) => {
    previous.set(e.document.uri, e.document.getText());
    // The document's prefix: the window a completion at its first lines sends.
    void completer.warmup(e.document, openWarmupPosition(e.document, settings));
  });
  // Warm-up after an edit, at the end of the text it inserted (found by
  // comparing with the previous content: cheap next to a network call).
  documents.onDidChangeContent((e) => {
    const doc = e.document;
    const now = doc.getText();
    const before = previous.get(doc.uri);
    previous.set(doc.uri, now);
    if (before === undefined) return;
    let suffix = 0;
    const limit = Math.min(before.length, now.length);
    let prefix = 0;
    while (prefix < limit && before.charCodeAt(prefix) === now.charCodeAt(prefix)) ++prefix;
    while (suffix < limit - prefix &&
           before.charCodeAt(before.length - 1 - suffix) === now.charCodeAt(now.length - 1 - suffix)) {
      ++suffix;
    }
    completer.scheduleWarmup(doc, doc.positionAt(now.length - suffix));
  });
  documents.onDidClose((e) => {
    previous.delete(e.document.uri);
    completer.forget(e.document.uri);
  });

  connection.languages.inlineCompletion.on(async (params, token) => {
    const doc = documents.get(params.textDocument.uri);
    if (doc === undefined) return null;
    const text = await completer.complete(doc, params.position, token);
    if (!text) return text === null ? null : { items: [] };
    const item: InlineCompletionItem = {
      insertText: text,
      range: { start: params.position, end: params.position },
    };
    return { items: [item] };
  });

  connection.onCompletion(async (params, token) => {
    const doc = documents.get(params.textDocument.uri);
    if (doc === undefined) return null;
    const text = await completer.complete(doc, params.position, token);
    if (!text) return text === null ? null : { isIncomplete: true, items: [] };
    // The item replaces the word before the cursor with that word plus the
    // continuation, so that clients which insert from the word start (e.g.
    // Neovim's omnifunc) and clients which filter on it both get it right.
    const word = wordBeforeCursor(doc, params.position);
    const newText = word + text;
    const item: CompletionItem = {
      label: newText.split("\n")[0].trim() || newText.trim(),
      kind: CompletionItemKind.Text,
      detail: "phi3",
      insertTextFormat: InsertTextFormat.PlainText,
      textEdit: {
        range: { start: { line: params.position.line, character: params.position.character - word.length },
                 end: params.position },
        newText,
      },
      filterText: newText,
      sortText: "0",
    };
    // Incomplete: typing on must ask again (the continuation depends on it).
    return { isIncomplete: true, items: [item] };
  });

  connection.onExecuteCommand(async (params, token, workDone) => {
    const args = (params.arguments?.[0] ?? {}) as CommandArgs;
    // The client's token when it sent one, else one created here.
    const reporter = workDone !== undefined && !WorkDoneProgressReporter.isNullInstance(workDone)
      ? workDone
      : await connection.window.createWorkDoneProgress();
    const progress = {
      begin: (t: string, p?: number, m?: string, c?: boolean) => reporter.begin(t, p, m, c),
      report: (m: string) => reporter.report(m),
      done: () => reporter.done(),
      token: "token" in reporter ? (reporter as WorkDoneProgressServerReporter).token : undefined,
    };
    return runCommand(params.command, args, documents.get(args.uri), getClient(), session, progress,
                      token, settings.commandMaxTokens, settings.temperature);
  });

  connection.onShutdown(() => {
    client?.close();
  });

  documents.listen(connection);
  connection.listen();
}

// The identifier characters just before the cursor.
function wordBeforeCursor(doc: TextDocument, pos: { line: number; character: number }): string {
  const line = doc.getText({ start: { line: pos.line, character: 0 }, end: pos });
  const m = /[\w$]*$/.exec(line);
  return m ? m[0] : "";
}

if (require.main === module) main();
