// Type-checks and bundles the extension (dist/extension.js; `vscode` is
// provided by the editor) and copies the language server bundle built in
// ../lsp/dist into server/, so that the .vsix is self-contained.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const here = __dirname;
const lspDist = path.join(here, "../lsp/dist");
if (!fs.existsSync(path.join(lspDist, "server.js"))) {
  console.error("clients/lsp/dist/server.js is missing: build clients/lsp first (npm run build there)");
  process.exit(1);
}
try {
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", here], { stdio: "inherit" });
} catch (e) {
  process.exit(1);  // tsc printed the errors
}
require("esbuild").buildSync({
  entryPoints: [path.join(here, "src/extension.ts")],
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  external: ["vscode"],
  outfile: path.join(here, "dist/extension.js"),
  logLevel: "warning",
});
fs.mkdirSync(path.join(here, "server"), { recursive: true });
for (const f of ["server.js", "phi3.proto"]) {
  fs.copyFileSync(path.join(lspDist, f), path.join(here, "server", f));
}
