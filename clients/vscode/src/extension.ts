// The VS Code side of phi3serve's code assistant, kept thin: everything else
// (prompts, stopping, latest-wins, warm-up, commands) is in the language
// server, which is tested with real LSP clients.
//
// Starts server/server.js (the bundled phi3 language server) over stdio with
// the `phi3.*` settings as initializationOptions (kept in sync), the API key
// from SecretStorage in its environment (never on its command line or in
// settings), shows the phi3/status notification in the status bar, and adds
// the explain / fix commands to the palette and the editor's context menu.
import * as vscode from "vscode";
import {
  ExecuteCommandRequest, LanguageClient, LanguageClientOptions, ServerOptions, TransportKind,
  WorkspaceEdit,
} from "vscode-languageclient/node";

const SECRET_KEY = "phi3.apiKey";

interface Status {
  state: string;
  message: string;
  requests: number;
  promptTokens: number;
  cachedPromptTokens: number;
  completionTokens: number;
  costUsd: number;
  lastFirstTokenMs: number | null;
  lastLatencyMs: number | null;
}

interface CommandResult {
  kind: "explanation" | "edit" | "error";
  markdown: string;
  edit?: WorkspaceEdit;
  error?: string;
}

let client: LanguageClient | undefined;
let statusItem: vscode.StatusBarItem;

function settings(): Record<string, unknown> {
  const c = vscode.workspace.getConfiguration("phi3");
  const keys = ["addr", "tls", "caCert", "tlsServerName", "routeKey", "debounceMs", "maxTokens",
                "maxLines", "temperature", "warmup"];
  return Object.fromEntries(keys.map((k) => [k, c.get(k)]));
}

async function start(context: vscode.ExtensionContext): Promise<void> {
  if (!vscode.workspace.getConfiguration("phi3").get<boolean>("enable", true)) {
    statusItem.text = "$(circle-slash) phi3";
    statusItem.tooltip = "phi3 completions are disabled (click to enable)";
    return;
  }
  const apiKey = (await context.secrets.get(SECRET_KEY)) ?? "";
  const module = context.asAbsolutePath("server/server.js");
  const env = { ...process.env, PHI3_API_KEY: apiKey };
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.stdio, options: { env } },
    debug: { module, transport: TransportKind.stdio, options: { env } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ scheme: "file" }, { scheme: "untitled" }],
    initializationOptions: settings(),
    synchronize: { configurationSection: "phi3" },
  };
  client = new LanguageClient("phi3", "phi3serve", serverOptions, clientOptions);
  client.onNotification("phi3/status", (s: Status) => showStatus(s));
  await client.start();
  statusItem.text = "$(sparkle) phi3";
  statusItem.tooltip = "phi3: connected to the language server (click to disable)";
}

async function stop(): Promise<void> {
  const c = client;
  client = undefined;
  if (c) await c.stop();
}

function showStatus(s: Status): void {
  const latency = s.lastFirstTokenMs === null ? "" : ` ${s.lastFirstTokenMs} ms`;
  const icon = s.state === "busy" ? "$(sync~spin)" : s.state === "error" ? "$(warning)" : "$(sparkle)";
  statusItem.text = `${icon} phi3${latency} $${s.costUsd.toFixed(4)}`;
  statusItem.tooltip = [
    `phi3: ${s.state}${s.message ? ` (${s.message})` : ""}`,
    `completions: ${s.requests}`,
    `prompt tokens: ${s.promptTokens} (${s.cachedPromptTokens} from the cache)`,
    `completion tokens: ${s.completionTokens}`,
    `spend: $${s.costUsd.toFixed(6)}`,
    `last completion: first token ${s.lastFirstTokenMs ?? "-"} ms, answered ${s.lastLatencyMs ?? "-"} ms`,
  ].join("\n");
}

async function runOnSelection(command: "phi3.explain" | "phi3.fix"): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!client || !editor || editor.selection.isEmpty) {
    void vscode.window.showWarningMessage("phi3: select some code first (and enable phi3).");
    return;
  }
  const args: Record<string, unknown> = {
    uri: editor.document.uri.toString(),
    range: client.code2ProtocolConverter.asRange(editor.selection),
  };
  if (command === "phi3.fix") {
    const what = await vscode.window.showInputBox({ prompt: "What should be fixed or changed? (optional)" });
    if (what === undefined) return;
    args.instruction = what;
  }
  // The server reports the streamed answer as $/progress (a notification).
  const result: CommandResult = await client.sendRequest(ExecuteCommandRequest.type,
                                                         { command, arguments: [args] });
  if (result.kind === "error") {
    void vscode.window.showErrorMessage(`phi3: ${result.error}`);
    return;
  }
  if (result.kind === "explanation") {
    const doc = await vscode.workspace.openTextDocument({ language: "markdown", content: result.markdown });
    await vscode.window.showTextDocument(doc, vscode.ViewColumn.Beside);
    return;
  }
  const edit = await client.protocol2CodeConverter.asWorkspaceEdit(result.edit!);
  const choice = await vscode.window.showInformationMessage("phi3 proposes a fix.", "Apply", "Show answer");
  if (choice === "Apply") await vscode.workspace.applyEdit(edit);
  if (choice === "Show answer") {
    const doc = await vscode.workspace.openTextDocument({ language: "markdown", content: result.markdown });
    await vscode.window.showTextDocument(doc, vscode.ViewColumn.Beside);
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "phi3.toggle";
  statusItem.show();
  const restart = async () => { await stop(); await start(context); };
  context.subscriptions.push(
    statusItem,
    vscode.commands.registerCommand("phi3.explainSelection", () => runOnSelection("phi3.explain")),
    vscode.commands.registerCommand("phi3.fixSelection", () => runOnSelection("phi3.fix")),
    vscode.commands.registerCommand("phi3.setApiKey", async () => {
      const key = await vscode.window.showInputBox({ prompt: "phi3-server API key", password: true });
      if (key === undefined) return;
      await context.secrets.store(SECRET_KEY, key);
      await restart();
    }),
    vscode.commands.registerCommand("phi3.clearApiKey", async () => {
      await context.secrets.delete(SECRET_KEY);
      await restart();
    }),
    vscode.commands.registerCommand("phi3.toggle", async () => {
      const c = vscode.workspace.getConfiguration("phi3");
      await c.update("enable", !c.get<boolean>("enable", true), vscode.ConfigurationTarget.Global);
    }),
    vscode.workspace.onDidChangeConfiguration(async (e) => {
      // Address, TLS and enablement need a new server; the rest is synced.
      if (["phi3.enable", "phi3.addr", "phi3.tls", "phi3.caCert", "phi3.tlsServerName", "phi3.routeKey"]
          .some((k) => e.affectsConfiguration(k))) {
        await restart();
      }
    }),
  );
  await start(context);
}

export async function deactivate(): Promise<void> {
  await stop();
}
