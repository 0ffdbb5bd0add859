// Code-aware stopping: where a streamed completion ends. Applied to the text
// as it streams, so that the gRPC call can be cancelled as soon as the answer
// is known (the server's slot is then free for the next keystroke).
//
// Rules, first match wins (a cut keeps the text before it):
//   1. single-line mode (the cursor's line has text after the cursor): the
//      end of the first line;
//   2. end of block: a closing bracket that closes a block opened before the
//      cursor (depth below zero), or a later non-blank line indented less than
//      the cursor's line: cut at the start of that line (or at the bracket if
//      it is on the first line), since the block's end is already in the file
//      or is the user's to write;
//   3. a blank line (the server also stops there: stop string "\n\n");
//   4. the line budget (maxLines lines);
//   5. no repetition of what follows the cursor: a completion line equal to
//      the next non-blank line after the cursor is cut with everything after
//      it, and the end of the first line that repeats the rest of the
//      cursor's line (e.g. an auto-inserted ")") is dropped.
// Trailing whitespace is dropped.

export interface StopContext {
  restOfLine: string;      // after the cursor, same line
  following: string[];     // lines after the cursor's line
  indent: number;          // leading whitespace width of the cursor's line
  maxLines: number;
}

export interface Trimmed {
  text: string;
  done: boolean;  // no further text can change the result: cancel the stream
}

const OPEN = "([{";
const CLOSE = ")]}";

export function singleLine(ctx: StopContext): boolean {
  return ctx.restOfLine.trim().length > 0;
}

// Server-side stop strings matching the rules above.
export function stopStrings(ctx: StopContext): string[] {
  return singleLine(ctx) ? ["\n"] : ["\n\n"];
}

export function indentWidth(line: string): number {
  let w = 0;
  for (const c of line) {
    if (c === " ") w += 1;
    else if (c === "\t") w += 4;
    else break;
  }
  return w;
}

// `final`: the stream has ended (no more text will come).
export function trimCompletion(raw: string, ctx: StopContext, final: boolean): Trimmed {
  const lines = raw.split("\n");
  const nextNonBlank = ctx.following.find((l) => l.trim().length > 0)?.trim();
  const single = singleLine(ctx);
  let cut = -1;  // index into raw where the completion ends
  let depth = 0;
  let offset = 0;  // index of lines[i] in raw
  for (let i = 0; i < lines.length && cut < 0; ++i) {
    const line = lines[i];
    const complete = i + 1 < lines.length || final;  // nothing more is appended to it
    const content = line.trim();
    if (i > 0) {
      const newline = offset - 1;
      if (single || i >= ctx.maxLines) { cut = newline; break; }
      if (content.length === 0) {
        if (complete) { cut = newline; break; }
      } else if (indentWidth(line) < ctx.indent ||
                 (complete && nextNonBlank !== undefined && content === nextNonBlank)) {
        cut = newline;
        break;
      }
    }
    for (let j = 0; j < line.length; ++j) {
      if (OPEN.includes(line[j])) {
        ++depth;
      } else if (CLOSE.includes(line[j]) && --depth < 0) {
        cut = i === 0 ? offset + j : offset - 1;
        break;
      }
    }
    offset += line.length + 1;
  }
  const done = cut >= 0;
  let text = done ? raw.slice(0, cut) : raw;
  if (done || final) text = dropRestOfLineEcho(text, ctx.restOfLine);
  return { text: text.replace(/[ \t]+$/gm, "").replace(/\n+$/, ""), done };
}

// Drops the end of the first line when it re-types the rest of the cursor's
// line (e.g. the ")" or ";" already there).
function dropRestOfLineEcho(text: string, restOfLine: string): string {
  const rest = restOfLine.trim();
  if (rest.length === 0) return text;
  const nl = text.indexOf("\n");
  const first = (nl < 0 ? text : text.slice(0, nl)).replace(/\s+$/, "");
  const tail = nl < 0 ? "" : text.slice(nl);
  return first.endsWith(rest) ? first.slice(0, first.length - rest.length) + tail : text;
}
