"""phi3serve-client: the Python twin of phi3-client, with the same flags and
the same output for generate and chat (streamed text, --stats and --logprobs on
stderr, one JSON object with --json); info --json prints GetModelInfoResponse
as proto JSON.
Exit codes: 0 ok, 1 the call failed ("CODE: message" on stderr), 2 bad usage."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Optional, Sequence

from google.protobuf import json_format

from phi3serve_client.client import DEFAULT_ADDRESS, Client, Phi3Error, Stream

PROG = "phi3serve-client"


class AppendTurn(argparse.Action):
    """--system/--user/--assistant TEXT: one chat turn each, in command-line order."""

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.turns.append((self.dest, values))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Command-line client for phi3-server (phi3.v1.Phi3 over gRPC).",
        epilog="Flags may come before or after the command. Examples:\n"
               f"  {PROG} --addr 127.0.0.1:50051 generate --prompt 'Once upon a time' "
               "--max-tokens 32\n"
               f"  {PROG} --tls --ca-cert ca.pem --api-key KEY chat --user 'Name a color'\n"
               f"  {PROG} info --json",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["generate", "chat", "tokenize", "info"],
                   help="generate: stream a completion of --prompt; chat: stream a reply to "
                        "--system/--user/--assistant turns; tokenize: token ids of --text; "
                        "info: the model and the server's limits")
    conn = p.add_argument_group("connection")
    conn.add_argument("--addr", default=DEFAULT_ADDRESS, metavar="HOST:PORT",
                      help=f"server address (default {DEFAULT_ADDRESS})")
    conn.add_argument("--api-key", metavar="KEY",
                      help="sent as 'authorization: Bearer KEY' (default $PHI3_API_KEY)")
    conn.add_argument("--tls", action="store_true", help="connect with TLS")
    conn.add_argument("--ca-cert", metavar="FILE",
                      help="PEM CA certificate that signed the server's (implies --tls; "
                           "default: the system's roots)")
    conn.add_argument("--tls-server-name", metavar="NAME",
                      help="name to check in the server's certificate (implies --tls)")
    conn.add_argument("--timeout", type=float, metavar="SECONDS", help="deadline of the call")
    conn.add_argument("--route-key", metavar="KEY",
                      help="sent as x-phi3-route-key: behind the fleet router, calls with the "
                           "same key go to the same replica and its prefix cache")
    text = p.add_argument_group("input")
    text.add_argument("--prompt", metavar="TEXT", help="generate: the raw prompt")
    text.add_argument("--prompt-tokens", metavar="ID,ID,...",
                      help="generate: the prompt as token ids, used as given")
    text.add_argument("--text", metavar="TEXT", help="tokenize: the text")
    text.add_argument("--no-bos", action="store_true",
                      help="generate, tokenize: no BOS token before the text")
    text.add_argument("--parse-special", action="store_true",
                      help="generate, tokenize: special-token text such as <|user|> becomes "
                           "its id")
    p.set_defaults(turns=[])
    for role in ("system", "user", "assistant"):
        text.add_argument(f"--{role}", dest=role, action=AppendTurn, metavar="TEXT",
                          help=f"chat: one {role} turn (repeatable, in conversation order)")
    gen = p.add_argument_group("generation (generate, chat)")
    gen.add_argument("--max-tokens", type=int, default=0, metavar="N",
                     help="completion tokens at most (default: the server's)")
    gen.add_argument("--temperature", type=float, metavar="T", help="0 = greedy (default 1)")
    gen.add_argument("--top-k", type=int, default=0, metavar="K")
    gen.add_argument("--top-p", type=float, metavar="P")
    gen.add_argument("--min-p", type=float, default=0.0, metavar="P")
    gen.add_argument("--repetition-penalty", type=float, metavar="R")
    gen.add_argument("--presence-penalty", type=float, default=0.0, metavar="P")
    gen.add_argument("--frequency-penalty", type=float, default=0.0, metavar="P")
    gen.add_argument("--seed", type=int, default=0, metavar="S")
    gen.add_argument("--stop", action="append", default=[], metavar="STR",
                     help="stop string (repeatable)")
    gen.add_argument("--stop-token-id", action="append", type=int, default=[], metavar="ID",
                     help="stop token id (repeatable)")
    gen.add_argument("--ignore-eos", action="store_true")
    gen.add_argument("--logprobs", action="store_true",
                     help="each token's log-probability, on stderr")
    gen.add_argument("--top-logprobs", type=int, default=0, metavar="N",
                     help="also the N most likely alternatives per token (implies --logprobs)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print one JSON object (as phi3-client --json) instead of the text")
    out.add_argument("--stats", action="store_true", help="usage and timings on stderr")
    return p


def print_stream(stream: Stream, args: argparse.Namespace) -> None:
    for chunk in stream:
        if args.json:
            continue
        print(chunk.text, end="", flush=True)
        for lp in chunk.logprobs:  # the line phi3-client prints
            top = "".join(f" {token_id}:{logprob:.4f}" for token_id, logprob in lp.top)
            print(f"[token {lp.token_id} logprob {lp.logprob:.4f}{top}]", file=sys.stderr)
    done = stream.completion
    if args.json:
        print(json.dumps(done.to_json()))
        return
    if done.text and not done.text.endswith("\n"):
        print()
    if args.stats:
        u, t = done.usage, done.timings
        decode_ms = t.total_ms - t.ttft_ms
        rate = (u.completion_tokens - 1) * 1000 / decode_ms \
            if u.completion_tokens > 1 and decode_ms > 0 else 0.0
        print(f"finish_reason={done.finish_reason} prompt_tokens={u.prompt_tokens} "
              f"cached_prompt_tokens={u.cached_prompt_tokens} "
              f"completion_tokens={u.completion_tokens} cost_usd={done.cost_usd:.10g} "
              f"queue_ms={t.queue_ms:.1f} ttft_ms={t.ttft_ms:.1f} total_ms={t.total_ms:.1f} "
              f"decode_tokens_per_s={rate:.1f}", file=sys.stderr)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    options = dict(max_tokens=args.max_tokens, temperature=args.temperature, top_k=args.top_k,
                   top_p=args.top_p, min_p=args.min_p,
                   repetition_penalty=args.repetition_penalty,
                   presence_penalty=args.presence_penalty,
                   frequency_penalty=args.frequency_penalty, seed=args.seed, stop=args.stop,
                   stop_token_ids=args.stop_token_id, ignore_eos=args.ignore_eos,
                   logprobs=args.logprobs, top_logprobs=args.top_logprobs)
    with Client(args.addr, api_key=args.api_key, tls=args.tls, ca_cert=args.ca_cert,
                tls_server_name=args.tls_server_name, route_key=args.route_key,
                timeout=args.timeout) as client:
        if args.command == "generate":
            if args.prompt_tokens is not None:
                try:
                    ids = [int(i) for i in args.prompt_tokens.split(",") if i]
                except ValueError:
                    parser.error("--prompt-tokens needs comma-separated ids")
                stream = client.generate(prompt_tokens=ids, **options)
            elif args.prompt is not None:
                stream = client.generate(args.prompt, add_bos=not args.no_bos,
                                         parse_special=args.parse_special, **options)
            else:
                parser.error("generate needs --prompt TEXT")
            print_stream(stream, args)
        elif args.command == "chat":
            if not any(role == "user" for role, _ in args.turns):
                parser.error("chat needs --user TEXT")
            print_stream(client.chat(args.turns, **options), args)
        elif args.command == "tokenize":
            if args.text is None:
                parser.error("tokenize needs --text TEXT")
            ids = client.tokenize(args.text, add_bos=not args.no_bos,
                                  parse_special=args.parse_special)
            if args.json:
                print(json.dumps({"token_ids": ids, "num_tokens": len(ids)}))
            else:
                print(" ".join(map(str, ids)))
        else:
            info = client.info()
            if args.json:
                print(json.dumps(json_format.MessageToDict(
                    info, preserving_proto_field_name=True,
                    including_default_value_fields=True)))
            else:
                print(info, end="")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run(args, parser)
    except Phi3Error as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # e.g. an unreadable --ca-cert
        print(f"{PROG}: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
