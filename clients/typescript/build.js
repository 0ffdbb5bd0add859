// Builds the package: copies the API's .proto files into proto/ (the package
// loads them at run time), generates their TypeScript types into
// src/generated/ with @grpc/proto-loader's proto-loader-gen-types, then
// compiles src/ to dist/ (JavaScript + .d.ts). proto/, src/generated/ and
// dist/ are build outputs, never committed.
"use strict";
const { execFileSync } = require("child_process");
const fs = require("fs");
const path = require("path");

const here = __dirname;
const from = path.join(here, "../../proto/phi3/v1");
const to = path.join(here, "proto/phi3/v1");
const generated = path.join(here, "src/generated");

function run(script, args) {
  try {
    execFileSync(process.execPath, [require.resolve(script), ...args],
                 { stdio: "inherit", cwd: here });
  } catch (e) {
    process.exit(1);  // the tool printed the errors
  }
}

fs.rmSync(to, { recursive: true, force: true });
fs.mkdirSync(to, { recursive: true });
const protos = fs.readdirSync(from).filter((f) => f.endsWith(".proto")).sort();
for (const f of protos) fs.copyFileSync(path.join(from, f), path.join(to, f));
fs.rmSync(generated, { recursive: true, force: true });
// The same loader options as src/index.ts's, so the types match the objects.
run("@grpc/proto-loader/build/bin/proto-loader-gen-types.js", [
  "--keepCase", "--longs=Number", "--enums=String", "--defaults", "--oneofs",
  "--includeComments", "--grpcLib=@grpc/grpc-js", "-I", "proto", "-O", generated,
  ...protos.map((f) => `phi3/v1/${f}`)]);
fs.rmSync(path.join(here, "dist"), { recursive: true, force: true });
run("typescript/bin/tsc", ["-p", here]);
