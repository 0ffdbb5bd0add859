// Which llama.cpp CPU build (libggml-cpu-<variant>.so) this process loaded:
// ggml picks one per CPU at run time, and they round differently, so every
// oracle result names it (tests/oracle/ggml_variant.py pins it).
import fs from 'node:fs';

// Call after getLlama(): the variant names of the loaded libggml-cpu libraries,
// comma-separated ("x64" for the plain libggml-cpu.so), "" if none is mapped.
export function loadedCpuVariant() {
  const libs = new Set();
  for (const line of fs.readFileSync('/proc/self/maps', 'utf8').split('\n')) {
    const m = line.match(/(\S*libggml-cpu[^/\s]*\.so)/);
    if (m) libs.add(m[1]);
  }
  return [...libs].map((p) => p.replace(/^.*libggml-cpu-?/, '').replace(/\.so$/, '') || 'x64')
      .join(',');
}
