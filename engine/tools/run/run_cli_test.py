#!/usr/bin/python3
"""phi3-run's command-line contract on a tiny generated model.

  run_cli_test.py --run PHI3_RUN --mkmodel PHI3_MKMODEL --work-dir DIR
"""
import argparse
import json
import os
import subprocess
import sys

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print('FAIL ' + what)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--run', required=True)
    ap.add_argument('--mkmodel', required=True)
    ap.add_argument('--work-dir', required=True)
    args = ap.parse_args()
    os.makedirs(args.work_dir, exist_ok=True)
    model = os.path.join(args.work_dir, 'tiny-q8_0.gguf')
    subprocess.run([args.mkmodel, '--preset', 'tiny', '--type', 'q8_0', '--seed', '3', '--out',
                    model], check=True, capture_output=True)

    def run(*flags):
        return subprocess.run([args.run] + list(flags), capture_output=True)

    # --max-tokens 0 only tokenizes; add_special = true (BOS), parse_special = false.
    r = run('--model', model, '--prompt', 'Hello<|end|>', '--max-tokens', '0', '--json')
    check(r.returncode == 0, 'tokenize-only exit code %d' % r.returncode)
    out = json.loads(r.stdout)
    check(out['prompt_tokens'][0] == 1, 'BOS first: %s' % out['prompt_tokens'])
    check(32007 not in out['prompt_tokens'], '<|end|> not parsed without --parse-special')
    check(out['completion_tokens'] == [] and out['text'] == '', 'no completion: %s' % out)
    r = run('--model', model, '--prompt', 'Hello<|end|>', '--max-tokens', '0', '--json',
            '--parse-special')
    check(json.loads(r.stdout)['prompt_tokens'][-1] == 32007, '--parse-special parses <|end|>')
    r = run('--model', model, '--prompt', 'Hi', '--chat', '--system', 'Be brief.',
            '--max-tokens', '0', '--json')
    toks = json.loads(r.stdout)['prompt_tokens']
    check(toks[:2] == [1, 32006] and toks[-1] == 32001, 'chat template ids: %s' % toks)

    # Greedy generation: deterministic, independent of threads; JSON text is
    # the completion only; streaming mode prints the same text.
    base = ['--model', model, '--prompt', 'Once upon a time', '--max-tokens', '12',
            '--temperature', '0', '--ignore-eos']
    a = json.loads(run(*(base + ['--json', '--threads', '1'])).stdout)
    b = json.loads(run(*(base + ['--json', '--threads', '2'])).stdout)
    check(len(a['completion_tokens']) == 12, '12 tokens: %s' % a)
    check(a == b, 'threads 1 vs 2 differ: %s vs %s' % (a, b))
    s = run(*(base + ['--threads', '1']))
    check(s.returncode == 0 and s.stdout.decode() == a['text'] + '\n',
          'streamed text %r vs json %r' % (s.stdout, a['text']))
    # Sampling with a seed is reproducible.
    samp = base[:-3] + ['--temperature', '0.9', '--seed', '5', '--json']
    check(run(*samp).stdout == run(*samp).stdout, 'seeded sampling reproducible')

    # Sampling flags take the engine's ranges, the same as the gRPC API's
    # (engine/engine.h): the edge is accepted, just past it is not.
    edge = base[:-3] + ['--max-tokens', '2', '--json']
    r = run(*(edge + ['--temperature', '2']))
    check(r.returncode == 0, 'temperature 2 accepted: exit %d %r' % (r.returncode, r.stderr))
    r = run(*(edge + ['--temperature', '2.5']))
    check(r.returncode == 2 and b'sampling.temperature must be in [0, 2], got 2.5' in r.stderr,
          'temperature 2.5 rejected with the range: exit %d %r' % (r.returncode, r.stderr))

    # Bad input: message on stderr, exit code 2.
    for flags, what in [
        ([], 'missing --model'),
        (['--model', model, '--prompt', 'x', '--bogus'], 'unknown flag'),
        (['--model', model, '--prompt', 'x', '--max-tokens', 'abc'], 'non-numeric value'),
        (['--model', model, '--prompt', 'x', '--max-tokens', '-1'], 'negative max tokens'),
        (['--model', model, '--prompt', 'x', '--top-p', '0'], 'top-p 0'),
        (['--model', model, '--prompt', 'x', '--temperature', '-1'], 'negative temperature'),
        (['--model', os.path.join(args.work_dir, 'missing.gguf'), '--prompt', 'x'],
         'missing file'),
        (['--model', args.run, '--prompt', 'x'], 'not a GGUF file'),
        (['--model', model, '--prompt-tokens', '1,99999'], 'token id out of range'),
        (['--model', model, '--prompt', 'x ' * 300, '--ctx', '256'], 'prompt over context'),
    ]:
        r = run(*flags)
        check(r.returncode == 2 and r.stderr.strip() != b'',
              '%s: exit %d, stderr %r' % (what, r.returncode, r.stderr[:200]))
    os.remove(model)
    print('phi3-run CLI: %d failures' % len(failures))
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main())
