// Settings of the language server: one table of defaults, overridden in order
// by initializationOptions, workspace/didChangeConfiguration ("phi3" section)
// and the command line (which wins: it is what the user typed last).

export interface Settings {
  addr: string;            // HOST:PORT of phi3-server (or of the fleet router)
  apiKey: string;          // sent as `authorization: Bearer KEY`; never logged
  routeKey: string;        // sent as `x-phi3-route-key` (the fleet router hashes on it); "" = derived from the workspace
  tls: boolean;
  caCert: string;          // PEM file of the CA to trust with tls ("" = system roots)
  tlsServerName: string;   // overrides the name checked in the server's certificate
  maxTokens: number;       // completion tokens per request
  commandMaxTokens: number;  // answer tokens of explain / fix
  temperature: number;     // 0 = greedy
  debounceMs: number;      // a completion request within this time of the previous one waits this long for a newer one
  maxLines: number;        // line budget of one completion
  contextTokens: number;   // prompt budget (estimated from characters, see prompt.ts)
  warmup: boolean;         // prefill the server's prefix cache on open / edit
  warmupDebounceMs: number;
  timeoutMs: number;       // deadline of one completion call
}

export const DEFAULTS: Readonly<Settings> = {
  addr: "127.0.0.1:50051",
  apiKey: "",
  routeKey: "",
  tls: false,
  caCert: "",
  tlsServerName: "",
  maxTokens: 64,
  commandMaxTokens: 512,
  temperature: 0,
  debounceMs: 75,
  maxLines: 8,
  contextTokens: 1024,
  warmup: true,
  warmupDebounceMs: 250,
  timeoutMs: 30000,
};

// Command-line flags, `--name value` or `--flag`, as settings. Flag names are
// the kebab-case keys of Settings (--addr, --api-key, --route-key, --tls,
// --ca-cert, --tls-server-name, --max-tokens, ...).
export function parseArgs(argv: string[]): Partial<Settings> {
  const out: Record<string, unknown> = {};
  const keys = Object.keys(DEFAULTS) as (keyof Settings)[];
  for (let i = 0; i < argv.length; ++i) {
    const arg = argv[i];
    if (!arg.startsWith("--")) continue;
    const name = arg.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    const key = keys.find((k) => k === name);
    if (key === undefined) continue;  // --stdio and the transport flags of vscode-languageserver
    const kind = typeof DEFAULTS[key];
    if (kind === "boolean") {
      const next = argv[i + 1];
      if (next === "true" || next === "false") {
        out[key] = next === "true";
        ++i;
      } else {
        out[key] = true;
      }
    } else if (i + 1 < argv.length) {
      out[key] = kind === "number" ? Number(argv[++i]) : argv[++i];
    }
  }
  return out as Partial<Settings>;
}

// Keeps only known keys with the default's type; returns the problems found.
export function sanitize(input: unknown, problems: string[]): Partial<Settings> {
  const out: Record<string, unknown> = {};
  if (input === null || typeof input !== "object") return out;
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (!(key in DEFAULTS)) continue;
    const want = typeof DEFAULTS[key as keyof Settings];
    if (typeof value === want && !(want === "number" && !Number.isFinite(value))) {
      out[key] = value;
    } else if (value !== undefined && value !== null) {
      problems.push(`setting ${key}: expected a ${want}, got ${JSON.stringify(key === "apiKey" ? "<hidden>" : value)}`);
    }
  }
  return out as Partial<Settings>;
}

export function merge(...layers: Partial<Settings>[]): Settings {
  const s: Settings = { ...DEFAULTS };
  for (const layer of layers) Object.assign(s, layer);
  s.maxTokens = clamp(Math.round(s.maxTokens), 1, 4096);
  s.commandMaxTokens = clamp(Math.round(s.commandMaxTokens), 1, 4096);
  s.maxLines = clamp(Math.round(s.maxLines), 1, 200);
  s.contextTokens = clamp(Math.round(s.contextTokens), 64, 32768);
  s.debounceMs = clamp(s.debounceMs, 0, 5000);
  s.warmupDebounceMs = clamp(s.warmupDebounceMs, 0, 60000);
  s.temperature = clamp(s.temperature, 0, 2);
  s.timeoutMs = clamp(s.timeoutMs, 100, 600000);
  return s;
}

// The settings as safe to print: the API key replaced by whether it is set.
export function describe(s: Settings): string {
  const { apiKey, ...rest } = s;
  return JSON.stringify({ ...rest, apiKey: apiKey ? "<set>" : "<none>" });
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
