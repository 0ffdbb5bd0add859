#!/usr/bin/python3
"""Which llama.cpp CPU build the oracle runs, and a copy of the oracle pinned to it.

node-llama-cpp ships one libggml-cpu-<variant>.so per x86-64 CPU family (zen4,
haswell, icelake, sapphirerapids, ...) beside its addon; ggml loads the one
whose ggml_backend_score() is highest on this CPU (0 = this CPU cannot run
it). The variants round differently (AMX and AVX512-FP16 paths, other dot
product orders), so "identical to llama.cpp" is a statement about one build.
Our numerics follow the zen4 build on every SIMD level, so the reference is
zen4 wherever the host can run it (AVX-512 F/BW/DQ/VL/CD/VBMI/VNNI/BF16:
AMD Zen 4 and 5, Intel Sapphire Rapids and later); elsewhere it is the build
ggml itself picks on that host. PHI3_ORACLE_VARIANT=NAME overrides the choice
(`best` = ggml's own pick).

A pinned oracle is a copy of tests/oracle made with hard links (instant, no
extra disk) from which every other libggml-cpu-*.so is removed, so ggml can
only load the pinned one.

    ggml_variant.py list [--oracle-dir DIR]   variants, their scores, the choice
"""
import argparse
import ctypes
import glob
import os
import shutil
import subprocess
import sys

REFERENCE = 'zen4'
ENV = 'PHI3_ORACLE_VARIANT'
_BINS = os.path.join('node_modules', '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64')
_PREFIX = 'libggml-cpu-'


def bins_dir(oracle_dir):
    return os.path.join(oracle_dir, _BINS)


def _variant_libs(oracle_dir):
    """{variant: path of its libggml-cpu-<variant>.so}."""
    libs = {}
    for path in glob.glob(os.path.join(bins_dir(oracle_dir), _PREFIX + '*.so')):
        libs[os.path.basename(path)[len(_PREFIX):-len('.so')]] = path
    return libs


# Run in a child process: loading every variant's library into one process is
# what ggml itself does, but a library that cannot run here must not take the
# test harness down with it.
_SCORE_SCRIPT = r'''
import ctypes, os, sys
ctypes.CDLL(os.path.join(sys.argv[1], 'libggml-base.so'), mode=ctypes.RTLD_GLOBAL)
for path in sys.argv[2:]:
    try:
        score = ctypes.CDLL(path).ggml_backend_score
        score.restype = ctypes.c_int
        print(path, score())
    except (OSError, AttributeError) as e:
        print(path, 0)
'''


def variant_scores(oracle_dir):
    """{variant: ggml_backend_score() on this CPU}; 0 = cannot run here."""
    libs = _variant_libs(oracle_dir)
    if not libs:
        raise RuntimeError('no %s*.so in %s: run scripts/setup.sh --tests' %
                           (_PREFIX, bins_dir(oracle_dir)))
    out = subprocess.run([sys.executable, '-c', _SCORE_SCRIPT, bins_dir(oracle_dir)] +
                         sorted(libs.values()), capture_output=True, text=True, check=True)
    by_path = dict(line.rsplit(' ', 1) for line in out.stdout.splitlines())
    return {v: int(by_path.get(p, 0)) for v, p in libs.items()}


def choose_variant(oracle_dir, requested=None, measured=()):
    """(variant, reason) the oracle should run: `requested`, else $PHI3_ORACLE_VARIANT,
    else zen4 if this CPU runs it, else the best-scoring build this CPU runs among
    `measured` (builds the caller has bounds for), else ggml's own pick. Raises
    ValueError for a variant that is not shipped or cannot run on this CPU."""
    scores = variant_scores(oracle_dir)
    best = max(scores, key=lambda v: scores[v])
    requested = requested or os.environ.get(ENV, '')
    if requested == 'best':
        return best, 'ggml\'s own pick on this CPU (%s=best)' % ENV
    if requested:
        if requested not in scores:
            raise ValueError('%s=%s: no such llama.cpp CPU build; shipped: %s' %
                             (ENV, requested, ', '.join(sorted(scores))))
        if scores[requested] <= 0:
            raise ValueError('%s=%s: this CPU cannot run that build; it can run: %s' %
                             (ENV, requested, ', '.join(sorted(v for v in scores if scores[v]))))
        return requested, 'forced by %s' % ENV
    if scores.get(REFERENCE, 0) > 0:
        return REFERENCE, 'the reference build'
    runnable = [v for v in measured if scores.get(v, 0) > 0]
    if runnable:
        closest = max(runnable, key=lambda v: scores[v])
        return closest, ('this CPU cannot run %s; %s is the closest build it runs that has '
                         'measured bounds (ggml would load %s)' % (REFERENCE, closest, best))
    return best, 'this CPU cannot run %s; ggml\'s own pick here' % REFERENCE


def _stamp(pinned_dir):
    try:
        with open(os.path.join(pinned_dir, '.pinned-from')) as f:
            return f.read()
    except OSError:
        return None


def pinned_oracle(oracle_dir, variant, cache_dir):
    """Path of a copy of oracle_dir whose node-llama-cpp can load only `variant`.

    Made once per variant under cache_dir and rebuilt when the oracle's npm
    install is newer; safe when several tests ask for it at once (each builds
    into a private folder and renames it into place)."""
    oracle_dir = os.path.abspath(oracle_dir)
    target = os.path.join(os.path.abspath(cache_dir), 'oracle-' + variant)
    # npm rewrites node_modules/.package-lock.json on every install.
    installed = os.path.join(oracle_dir, 'node_modules', '.package-lock.json')
    if not os.path.exists(installed):
        installed = os.path.join(oracle_dir, 'node_modules')
    want = '%s %d' % (oracle_dir, os.stat(installed).st_mtime_ns)
    if _stamp(target) == want:
        return target
    os.makedirs(cache_dir, exist_ok=True)
    tmp = '%s.tmp-%d' % (target, os.getpid())
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        # Hard links; a build tree on another file system gets a real copy.
        subprocess.run(['cp', '-al', oracle_dir, tmp], check=True, capture_output=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(oracle_dir, tmp, symlinks=True)
    kept = 0
    for v, path in _variant_libs(tmp).items():
        if v == variant:
            kept += 1
        else:
            os.remove(path)
    if kept != 1:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ValueError('llama.cpp CPU build %s is not shipped in %s' % (variant, oracle_dir))
    with open(os.path.join(tmp, '.pinned-from'), 'w') as f:
        f.write(want)
    if _stamp(target) == want:  # another test made it meanwhile
        shutil.rmtree(tmp, ignore_errors=True)
        return target
    old = '%s.old-%d' % (target, os.getpid())
    if os.path.exists(target):  # stale: the oracle was installed again since
        os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        # Another test renamed its identical copy into place first.
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return target


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('command', choices=['list'])
    ap.add_argument('--oracle-dir', default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    scores = variant_scores(args.oracle_dir)
    best = max(scores, key=lambda v: scores[v])
    for v in sorted(scores, key=lambda v: -scores[v]):
        notes = []
        if v == best:
            notes.append('ggml\'s pick')
        if v == REFERENCE:
            notes.append('reference')
        print('%-16s %5d  %s' % (v, scores[v],
                                 ', '.join(notes) if scores[v] else 'cannot run here'))
    try:
        variant, why = choose_variant(args.oracle_dir)
        print('conformance runs against: %s (%s)' % (variant, why))
    except ValueError as e:
        print(e)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
