// The completion prompt: a short stable header, then the code before the
// cursor from a line boundary, bounded.
//
//   <line comment> file: NAME (LANGUAGE)\n
//   <the document from line W up to the cursor>
//
// Cacheability. The server's prefix cache reuses the KV of every full block
// of tokens a previous prompt shared with this one, so the prompt must start
// the same way as the user types: the header depends only on the file, and
// the window start W is a multiple of WINDOW_STRIDE lines, the smallest whose
// text up to the cursor fits the budget. W therefore moves only when the
// window has to jump by a stride (every few dozen lines typed), not per
// keystroke; warm-up re-fills the cache after a jump.
//
// Text after the cursor. Phi-3 was not trained with fill-in-the-middle tokens,
// and describing the suffix in the prompt (e.g. as a comment) makes a plain
// causal model copy it, and puts text that changes with every edit below the
// cursor into the prefix. So the suffix is never sent; it is used on the
// client side only: the rest of the cursor's line decides single-line mode
// (complete up to the end of the line only), and completion text that would
// re-type what already follows the cursor is cut (postprocess.ts).

// Tokens are estimated from characters (Phi-3's tokenizer averages 3-4
// characters per token on source code; 3 keeps the prompt within budget).
export const CHARS_PER_TOKEN = 3;
export const WINDOW_STRIDE = 32;

const LINE_COMMENT: Record<string, string> = {
  c: "//", cpp: "//", csharp: "//", cuda: "//", go: "//", java: "//", javascript: "//",
  javascriptreact: "//", typescript: "//", typescriptreact: "//", rust: "//", swift: "//",
  kotlin: "//", scala: "//", dart: "//", php: "//", proto: "//", proto3: "//", zig: "//",
  python: "#", shellscript: "#", sh: "#", bash: "#", ruby: "#", perl: "#", r: "#", yaml: "#",
  toml: "#", cmake: "#", make: "#", makefile: "#", dockerfile: "#", elixir: "#", julia: "#",
  lua: "--", sql: "--", haskell: "--", ada: "--",
  lisp: ";", clojure: ";", scheme: ";",
  tex: "%", latex: "%", erlang: "%", matlab: "%",
  vim: "\"",
};

export function lineComment(languageId: string): string {
  return LINE_COMMENT[languageId] ?? "#";
}

export function header(fileName: string, languageId: string): string {
  return `${lineComment(languageId)} file: ${fileName} (${languageId})\n`;
}

export interface PromptParts {
  prompt: string;        // header + window
  windowStartLine: number;
  restOfLine: string;    // text after the cursor on its line
  following: string[];   // the lines after the cursor's line (up to 20)
}

// `lines` are the document's lines without their terminators; the cursor is at
// (line, character).
export function buildPrompt(lines: string[], line: number, character: number, fileName: string,
                            languageId: string, contextTokens: number): PromptParts {
  const head = header(fileName, languageId);
  const budget = Math.max(0, contextTokens * CHARS_PER_TOKEN - head.length);
  const current = lines[line] ?? "";
  const beforeCursor = current.slice(0, character);
  // Characters from the start of each line to the cursor, walking upwards.
  let used = beforeCursor.length;
  let earliest = line;  // the earliest line that still fits
  while (earliest > 0 && used + lines[earliest - 1].length + 1 <= budget) {
    used += lines[earliest - 1].length + 1;
    --earliest;
  }
  const start = Math.min(line, Math.ceil(earliest / WINDOW_STRIDE) * WINDOW_STRIDE);
  let window = lines.slice(start, line).map((l) => l + "\n").join("") + beforeCursor;
  if (window.length > budget) window = window.slice(window.length - budget);  // one huge line
  return {
    prompt: head + window,
    windowStartLine: start,
    restOfLine: current.slice(character),
    following: lines.slice(line + 1, line + 21),
  };
}

// Splits a document into lines (any of \n, \r\n, \r).
export function splitLines(text: string): string[] {
  return text.split(/\r\n|\r|\n/);
}
