#!/usr/bin/python3
"""Pinning llama.cpp's CPU build: node-llama-cpp in a pinned oracle loads that
build and no other, and impossible choices are refused with a clear message.

    ggml_variant_test.py --oracle-dir DIR --node NODE --cache DIR
"""
import argparse
import os
import subprocess
import sys
import unittest
from unittest import mock

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ggml_variant  # noqa: E402

ARGS = None
LOADED = ("import('node-llama-cpp').then(async ({getLlama}) => {"
          "await getLlama({gpu: false, build: 'never', logLevel: 'error'});"
          "const {loadedCpuVariant} = await import('./cpu_variant.mjs');"
          "console.log(loadedCpuVariant()); });")


def loaded_variant(oracle_dir):
    return subprocess.run([ARGS.node, '-e', LOADED], cwd=oracle_dir, capture_output=True,
                          text=True, check=True).stdout.strip()


class GgmlVariantTest(unittest.TestCase):
    def test_scores_rank_the_shipped_builds(self):
        scores = ggml_variant.variant_scores(ARGS.oracle_dir)
        self.assertIn('zen4', scores)
        self.assertIn('haswell', scores)
        self.assertGreater(scores['x64'], 0, 'the baseline build runs on every x86-64 CPU')

    def test_unpinned_oracle_loads_the_best_scoring_build(self):
        scores = ggml_variant.variant_scores(ARGS.oracle_dir)
        self.assertEqual(loaded_variant(ARGS.oracle_dir), max(scores, key=lambda v: scores[v]))

    def test_pinned_oracle_loads_only_its_build(self):
        chosen, _ = ggml_variant.choose_variant(ARGS.oracle_dir, None)
        for variant in sorted({'x64', chosen}):
            pinned = ggml_variant.pinned_oracle(ARGS.oracle_dir, variant, ARGS.cache)
            self.assertEqual(loaded_variant(pinned), variant)
            # A second call reuses the copy.
            self.assertEqual(ggml_variant.pinned_oracle(ARGS.oracle_dir, variant, ARGS.cache),
                             pinned)

    def test_default_is_zen4_where_it_runs(self):
        scores = ggml_variant.variant_scores(ARGS.oracle_dir)
        with mock.patch.dict(os.environ, {ggml_variant.ENV: ''}):
            variant, _ = ggml_variant.choose_variant(ARGS.oracle_dir)
        if scores['zen4'] > 0:
            self.assertEqual(variant, 'zen4')
        else:
            self.assertEqual(variant, max(scores, key=lambda v: scores[v]))

    def test_without_zen4_the_closest_measured_build(self):
        scores = {'zen4': 0, 'icelake': 1472, 'skylakex': 192, 'haswell': 64, 'x64': 1}
        with mock.patch.object(ggml_variant, 'variant_scores', return_value=scores), \
                mock.patch.dict(os.environ, {ggml_variant.ENV: ''}):
            self.assertEqual(ggml_variant.choose_variant('-', measured=['haswell', 'skylakex'])[0],
                             'skylakex')
            self.assertEqual(ggml_variant.choose_variant('-', measured=['cooperlake'])[0],
                             'icelake', 'no measured build runs here: ggml\'s pick')
            scores['zen4'] = 1984
            self.assertEqual(ggml_variant.choose_variant('-', measured=['haswell'])[0], 'zen4')

    def test_impossible_choices_are_refused(self):
        with self.assertRaisesRegex(ValueError, 'no such llama.cpp CPU build'):
            ggml_variant.choose_variant(ARGS.oracle_dir, 'pentium4')
        scores = ggml_variant.variant_scores(ARGS.oracle_dir)
        for variant, score in scores.items():
            if score == 0:
                with self.assertRaisesRegex(ValueError, 'this CPU cannot run'):
                    ggml_variant.choose_variant(ARGS.oracle_dir, variant)


if __name__ == '__main__':
    ap = argparse.ArgumentParser()
    ap.add_argument('--oracle-dir', required=True)
    ap.add_argument('--node', required=True)
    ap.add_argument('--cache', required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)
