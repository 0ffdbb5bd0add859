// The language server's prompt and stopping rules (clients/lsp/src/prompt.ts,
// postprocess.ts) on hand-written cases, through the bundle's exports:
//   node stopping_test.js clients/lsp/dist/server.js
"use strict";
const assert = require("assert");
const lsp = require(process.argv[2]);

const ctx = (over = {}) => ({ restOfLine: "", following: [], indent: 2, maxLines: 8, ...over });
const trim = (raw, c, final = true) => lsp.trimCompletion(raw, c, final);

// Single-line mode when text follows the cursor; the end of the line that
// re-types it is dropped; stop strings follow the mode.
assert.deepStrictEqual(lsp.stopStrings(ctx({ restOfLine: ");" })), ["\n"]);
assert.deepStrictEqual(lsp.stopStrings(ctx()), ["\n\n"]);
assert.strictEqual(trim("a, b);\nfoo();", ctx({ restOfLine: ");" })).text, "a, b");
assert.strictEqual(trim("x + 1;", ctx({ restOfLine: ";" })).text, "x + 1");
// End of block: a bracket closing a block opened before the cursor.
assert.deepStrictEqual(trim("total;\n}\nint Next() {", ctx()), { text: "total;", done: true });
assert.strictEqual(trim("a + b) * c", ctx()).text, "a + b");
// Nested brackets opened in the completion are fine.
assert.strictEqual(trim("f(g(x));\n  y = [1, 2];", ctx(), true).text, "f(g(x));\n  y = [1, 2];");
// Dedent below the cursor's line ends the block (Python and braces alike).
assert.strictEqual(trim("x = 1\n    y = 2\nz = 3", ctx({ indent: 4 })).text, "x = 1\n    y = 2");
// A blank line; the line budget.
assert.strictEqual(trim("a;\n  b;\n\n  c;", ctx()).text, "a;\n  b;");
assert.strictEqual(trim("1;\n  2;\n  3;\n  4;", ctx({ maxLines: 2 })).text, "1;\n  2;");
// No repetition of the next line after the cursor.
assert.strictEqual(trim("sum += v;\n  return sum;\n  x", ctx({ following: ["", "  return sum;"] })).text,
                   "sum += v;");
// While streaming: not done until a rule fires; the unfinished line waits.
assert.deepStrictEqual(trim("a;\n  b", ctx(), false), { text: "a;\n  b", done: false });
assert.strictEqual(trim("a;\n  b;\n", ctx(), false).done, false);
assert.strictEqual(trim("a;\n  b;\n\n", ctx(), false).done, true);

// The prompt: stable header, window from a line that is a multiple of 32,
// bounded by the budget, never the text after the cursor.
const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(20)}`);
const p = lsp.buildPrompt(lines, 150, 4, "a.py", "python", 400);
assert.ok(p.prompt.startsWith("# file: a.py (python)\n"));
assert.strictEqual(p.windowStartLine % 32, 0);
assert.ok(p.prompt.length <= 400 * 3, `prompt of ${p.prompt.length} characters`);
assert.ok(p.prompt.endsWith("\nline"));
assert.strictEqual(p.restOfLine, " 150 " + "x".repeat(20));
// Typing on the same line keeps the window start (the cached prefix).
const q = lsp.buildPrompt(lines, 150, 9, "a.py", "python", 400);
assert.strictEqual(q.windowStartLine, p.windowStartLine);
assert.ok(q.prompt.startsWith(p.prompt));
assert.strictEqual(lsp.header("m.cc", "cpp"), "// file: m.cc (cpp)\n");
console.log("ok stopping and prompt rules");
