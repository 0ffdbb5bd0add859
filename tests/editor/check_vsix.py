"""Checks the VS Code extension package: manifest, bundled extension and
language server, the API's proto, no sources or node_modules; then starts the
bundled server from the package with node and initializes it over stdio.

usage: check_vsix.py FILE.vsix SOURCE_DIR NODE
"""
import json
import signal
import subprocess
import sys
import tempfile
import zipfile

vsix, source_dir, node = sys.argv[1:4]
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


with zipfile.ZipFile(vsix) as z:
    names = set(z.namelist())
    for required in ["extension.vsixmanifest", "[Content_Types].xml", "extension/package.json",
                     "extension/readme.md", "extension/dist/extension.js",
                     "extension/server/server.js", "extension/server/phi3.proto"]:
        check(required in names, f"missing {required}")
    check(not any("node_modules/" in n or n.startswith("extension/src/") for n in names),
          "sources or node_modules packaged")
    manifest = json.loads(z.read("extension/package.json"))
    check(manifest["main"] == "./dist/extension.js", f"main is {manifest['main']}")
    commands = {c["command"] for c in manifest["contributes"]["commands"]}
    check({"phi3.explainSelection", "phi3.fixSelection", "phi3.setApiKey"} <= commands,
          f"commands {sorted(commands)}")
    menu = {m["command"] for m in manifest["contributes"]["menus"]["editor/context"]}
    check({"phi3.explainSelection", "phi3.fixSelection"} <= menu, f"context menu {sorted(menu)}")
    settings = manifest["contributes"]["configuration"]["properties"]
    for key in ["phi3.addr", "phi3.tls", "phi3.enable", "phi3.debounceMs", "phi3.maxTokens"]:
        check(key in settings, f"setting {key} missing")
    check(not any("apiKey" in k for k in settings), "the API key must not be a setting")
    xml = z.read("extension.vsixmanifest").decode()
    check('Id="phi3serve"' in xml and 'Publisher="phi3serve"' in xml, "vsixmanifest identity")
    with open(f"{source_dir}/proto/phi3/v1/phi3.proto", "rb") as f:
        check(z.read("extension/server/phi3.proto") == f.read(), "packaged proto differs")

    # The packaged server runs on its own (bundled dependencies, proto beside it).
    with tempfile.TemporaryDirectory() as tmp:
        z.extractall(tmp)
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                           "params": {"processId": None, "rootUri": None, "capabilities": {}}})
        message = f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
        signal.alarm(30)  # bounded wait for the answer
        p = subprocess.Popen([node, f"{tmp}/extension/server/server.js", "--stdio"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            p.stdin.write(message)
            p.stdin.flush()
            out = ""
            while '"id":1' not in out:  # skip notifications (log messages)
                length = 0
                while (line := p.stdout.readline().strip()) != b"":
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                out = p.stdout.read(length).decode(errors="replace")
        finally:
            p.kill()
            p.wait()
            signal.alarm(0)
        check('"inlineCompletionProvider":true' in out, f"initialize answer: {out[:300]}")

for f in failures:
    print("FAILED:", f)
print(f"{vsix}: {len(names)} files, " + ("ok" if not failures else f"{len(failures)} problems"))
sys.exit(1 if failures else 0)
