#!/usr/bin/python3
"""Streams a completion from phi3-server with the phi3serve-client package.

    example.py --addr 127.0.0.1:50051 --prompt "Once upon a time" [--api-key KEY]
               [--tls [--ca-cert FILE] [--tls-server-name NAME]] [--json]

Needs the package installed (see clients/README.md), or, from a build tree,
PYTHONPATH=build/clients/python:clients/python/src. With --json it prints one
JSON object like phi3-client's --json. Exit codes: 0 ok, 1 the call failed.
"""
import argparse
import json
import sys

from phi3serve_client import Client, Phi3Error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051", metavar="HOST:PORT")
    parser.add_argument("--api-key", metavar="KEY", help="default $PHI3_API_KEY")
    parser.add_argument("--tls", action="store_true", help="connect with TLS")
    parser.add_argument("--ca-cert", metavar="FILE", help="PEM CA certificate (implies --tls)")
    parser.add_argument("--tls-server-name", metavar="NAME",
                        help="name to check in the server's certificate (implies --tls)")
    parser.add_argument("--prompt", required=True, metavar="TEXT")
    parser.add_argument("--max-tokens", type=int, default=32, metavar="N")
    parser.add_argument("--temperature", type=float, default=0.0, metavar="T")
    parser.add_argument("--seed", type=int, default=0, metavar="S")
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS")
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    args = parser.parse_args()

    with Client(args.addr, api_key=args.api_key, tls=args.tls, ca_cert=args.ca_cert,
                tls_server_name=args.tls_server_name, timeout=args.timeout) as client:
        stream = client.generate(args.prompt, max_tokens=args.max_tokens,
                                 temperature=args.temperature, seed=args.seed)
        try:
            for chunk in stream:
                if not args.json:
                    print(chunk.text, end="", flush=True)
        except Phi3Error as e:
            print(f"\n{e}", file=sys.stderr)
            return 1
    done = stream.completion
    if args.json:
        print(json.dumps(done.to_json()))
    else:
        print(f"\n[{done.finish_reason}, {done.usage.completion_tokens} tokens, "
              f"${done.cost_usd:.8f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
