#!/usr/bin/python3
"""How far each llama.cpp CPU build is from our engine: one table, this host.

Runs the generation conformance tests (ctest -L conformance -R
generation_conformance) once per llama.cpp CPU build this CPU can run, with
the bounds off (PHI3_CONFORMANCE_MEASURE=1), and prints a Markdown table:
per build and weight type, greedy prompts identical, near-ties (largest gap),
tokens equal, first-step log-softmax max and rms difference, exact prompts.
These are the figures OTHER_BOUNDS in generation_conformance.py is set from.
Slow: the whole conformance suite once per build. Run by hand:

    tests/conformance/variant_table.py --build build [--variants zen4,haswell] [-j 2]
"""
import argparse
import math
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'oracle'))
import ggml_variant  # noqa: E402

SUMMARY = re.compile(
    r'^(?P<label>\S+) +\[[^\]]*\] prompts +(?P<prompts>\d+) +identical +(?P<identical>\d+) +'
    r'near-ties (?P<ties>\d+) .*?tokens-equal +(?P<tokens>\d+) +logit-diff max (?P<max>\S+) '
    r'.*?rms (?P<rms>\S+) .*?exact (?P<exact>\d+)')
GAP = re.compile(r'top - (?P<gap>[0-9.]+|inf)\)')


def measure(build, variant, jobs):
    env = dict(os.environ, PHI3_ORACLE_VARIANT=variant, PHI3_CONFORMANCE_MEASURE='1')
    out = subprocess.run(['ctest', '-R', '^generation_conformance_', '-j', str(jobs), '-V'],
                         cwd=build, env=env, capture_output=True, text=True).stdout
    return parse(out.splitlines())


def parse(lines):
    """{model label: figures} from conformance summary and near-tie lines."""
    rows = {}
    last = None
    for line in lines:
        line = re.sub(r'^\d+: ', '', line)  # ctest -V prefixes lines with the test number
        m = SUMMARY.match(line)
        if m:
            last = m.group('label')
            rows[last] = dict(m.groupdict(), gap=0.0)
        elif last and 'near-tie accepted' in line:
            g = GAP.search(line)
            if g:
                rows[last]['gap'] = max(rows[last]['gap'], float(g.group('gap')))
    return rows


def by_type(rows):
    """The rows of one build merged per weight type (a type's bounds cover its
    split-QKV, LongRoPE and head-96 models too): worst figures of each."""
    merged = {}
    for label, r in rows.items():
        t = label.split('-')[0]  # 'f16-split-qkv-ctx1024' -> 'f16'
        m = merged.setdefault(t, dict(rms=0.0, max=0.0, gap=0.0, exact=10**9))
        m['rms'] = max(m['rms'], float(r['rms']))
        m['max'] = max(m['max'], float(r['max']))
        m['gap'] = max(m['gap'], r['gap'])
        m['exact'] = min(m['exact'], int(r['exact']))
    return merged


def _up(x, floor):
    """x with 50% headroom, rounded up to 2 significant digits, at least floor."""
    x = max(1.5 * x, floor)
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return math.ceil(x / scale) * scale


def bounds_from(r):
    """(rms, max, near-tie, min exact) for OTHER_BOUNDS: measured with 50%
    headroom (llama.cpp at 1 thread and our engine are deterministic, so the
    same build gives the same figures on any CPU), exact prompts as measured."""
    return '(%.2g, %.2g, %.2g, %d)' % (_up(r['rms'], 1e-5), _up(r['max'], 1e-4),
                                       _up(r['gap'], 1e-3), r['exact'])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--build', default='build', help='configured build tree')
    ap.add_argument('--variants', default='', help='comma-separated (default: every runnable)')
    ap.add_argument('-j', '--jobs', type=int, default=2)
    ap.add_argument('--from-log', default='',
                    help='read summary lines from a saved ctest -V log instead of running')
    args = ap.parse_args()
    oracle_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'oracle')
    scores = ggml_variant.variant_scores(oracle_dir)
    variants = ([v for v in args.variants.split(',') if v] or
                sorted((v for v in scores if scores[v] > 0), key=lambda v: -scores[v]))
    print('| llama.cpp build | model | identical / prompts | near-ties (largest gap) | '
          'tokens equal | first-step max diff | rms | exact prompts |')
    print('|---|---|---|---|---|---|---|---|')
    measured = {}
    for variant in variants:
        rows = (parse(open(args.from_log).read().splitlines()) if args.from_log else
                measure(args.build, variant, args.jobs))
        measured[variant] = rows
        if not rows:
            print('| %s | (no result: is the build configured with the oracle?) |||||||' % variant)
        for label in sorted(rows):
            r = rows[label]
            print('| %s | %s | %s / %s | %s (%.3g) | %s | %s | %s | %s |' % (
                variant, label, r['identical'], r['prompts'], r['ties'], r['gap'], r['tokens'],
                r['max'], r['rms'], r['exact']))
        sys.stdout.flush()
    print('\nOTHER_BOUNDS entries (generation_conformance.py):')
    for variant, rows in measured.items():
        print('    %r: {' % variant)
        for t, r in sorted(by_type(rows).items()):
            print('        %r: %s,' % (t, bounds_from(r)))
        print('    },')
    return 0


if __name__ == '__main__':
    sys.exit(main())
