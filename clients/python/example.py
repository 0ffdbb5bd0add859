#!/usr/bin/python3
"""Streams a completion from phi3-server with the generated Python stubs.

    PYTHONPATH=build/clients/python /usr/bin/python3 clients/python/example.py \
        --addr 127.0.0.1:50051 --prompt "Once upon a time" [--api-key KEY] [--json]

Use Debian's /usr/bin/python3 (python3-grpcio, python3-protobuf). With --json
it prints one JSON object like phi3-client's --json.
"""
import argparse
import json
import sys

import grpc
from google.protobuf import json_format  # noqa: F401  (handy for debugging)

from phi3.v1 import phi3_pb2, phi3_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    parser.add_argument("--api-key", default="")
    parser.add_argument("--prompt", required=True)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.addr)
    stub = phi3_pb2_grpc.Phi3Stub(channel)
    request = phi3_pb2.GenerateRequest(
        prompt=args.prompt,
        sampling=phi3_pb2.SamplingOptions(temperature=args.temperature, seed=args.seed),
        stop=phi3_pb2.StopOptions(max_tokens=args.max_tokens),
    )
    metadata = [("authorization", f"Bearer {args.api_key}")] if args.api_key else []

    text, tokens, last = "", [], None
    try:
        for chunk in stub.Generate(request, metadata=metadata, timeout=args.timeout):
            text += chunk.text
            tokens.extend(chunk.token_ids)
            if not args.json:
                print(chunk.text, end="", flush=True)
            if chunk.finish_reason != phi3_pb2.FINISH_REASON_UNSPECIFIED:
                last = chunk
    except grpc.RpcError as e:
        print(f"\n{e.code().name}: {e.details()}", file=sys.stderr)
        return 1

    reason = phi3_pb2.FinishReason.Name(last.finish_reason).removeprefix("FINISH_REASON_")
    if args.json:
        print(json.dumps({
            "text": text,
            "completion_tokens": tokens,
            "finish_reason": reason,
            "usage": {
                "prompt_tokens": last.usage.prompt_tokens,
                "cached_prompt_tokens": last.usage.cached_prompt_tokens,
                "completion_tokens": last.usage.completion_tokens,
            },
            "cost_usd": last.cost_usd,
            "timings": {
                "queue_ms": last.timings.queue_ms,
                "ttft_ms": last.timings.ttft_ms,
                "total_ms": last.timings.total_ms,
            },
        }))
    else:
        print(f"\n[{reason}, {last.usage.completion_tokens} tokens, ${last.cost_usd:.8f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
