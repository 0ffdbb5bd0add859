// Type-checks the sources (tsc) and bundles the language server with its
// dependencies into one file, dist/server.js, next to a copy of the API's
// proto that it loads at run time (dist/ is self-contained: the VS Code
// extension ships it as is).
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const here = __dirname;
const dist = path.join(here, "dist");
try {
  execFileSync(process.execPath, [require.resolve("typescript/bin/tsc"), "-p", here],
               { stdio: "inherit" });
} catch (e) {
  process.exit(1);  // tsc printed the errors
}
require("esbuild").buildSync({
  entryPoints: [path.join(here, "src/server.ts")],
  bundle: true,
  platform: "node",
  target: "node18",
  format: "cjs",
  outfile: path.join(dist, "server.js"),
  logLevel: "warning",
});
fs.copyFileSync(path.join(here, "../../proto/phi3/v1/phi3.proto"), path.join(dist, "phi3.proto"));
