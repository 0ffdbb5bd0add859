"""A typed client for phi3.v1.Phi3 on top of the generated stubs.

    with Client("127.0.0.1:50051", api_key="...", tls=True, ca_cert="ca.pem") as client:
        stream = client.generate("Once upon a time", max_tokens=32, temperature=0)
        for chunk in stream:
            print(chunk.text, end="", flush=True)
        print(stream.completion.finish_reason, stream.completion.usage)

Calls that fail raise Phi3Error with the gRPC status code and the server's
message (which names the field and the expected range for bad arguments).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import grpc

from phi3.v1 import phi3_pb2, phi3_pb2_grpc

DEFAULT_ADDRESS = "127.0.0.1:50051"


class Phi3Error(Exception):
    """A failed call: `code` is the gRPC status, `details` the server's message."""

    def __init__(self, code: grpc.StatusCode, details: str):
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    cached_prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True)
class Timings:
    queue_ms: float
    ttft_ms: float
    total_ms: float


@dataclass(frozen=True)
class TokenLogprobs:
    """A sampled token's natural-log probability and, with top_logprobs, the
    most likely alternatives at that step as (token_id, logprob), best first."""

    token_id: int
    logprob: float
    top: List[Tuple[int, float]]


@dataclass(frozen=True)
class Chunk:
    """One streamed message: text and token ids produced since the previous
    one, and their log-probabilities when the request asked for them."""

    text: str
    token_ids: List[int]
    logprobs: List[TokenLogprobs]


@dataclass
class Completion:
    """The whole call, once the stream has ended."""

    text: str = ""
    token_ids: List[int] = field(default_factory=list)
    finish_reason: str = ""  # STOP, LENGTH, STOP_SEQUENCE, CANCELLED, DEADLINE, ERROR
    usage: Usage = Usage(0, 0, 0)
    cost_usd: float = 0.0
    timings: Timings = Timings(0.0, 0.0, 0.0)

    def to_json(self) -> Dict[str, Any]:
        """The object phi3-client --json prints, keys in the same order."""
        return {
            "text": self.text,
            "completion_tokens": self.token_ids,
            "finish_reason": self.finish_reason,
            "usage": vars(self.usage),
            "cost_usd": self.cost_usd,
            "timings": vars(self.timings),
        }


class Stream:
    """Iterate for Chunks; `completion` is complete once the iteration ends.
    `cancel()` stops the generation on the server within one engine step."""

    def __init__(self, call: Any):
        self._call = call
        self.completion = Completion()

    def __iter__(self) -> Iterator[Chunk]:
        done = self.completion
        try:
            for message in self._call:
                done.text += message.text
                done.token_ids.extend(message.token_ids)
                if message.finish_reason != phi3_pb2.FINISH_REASON_UNSPECIFIED:
                    done.finish_reason = phi3_pb2.FinishReason.Name(
                        message.finish_reason).removeprefix("FINISH_REASON_")
                    u, t = message.usage, message.timings
                    done.usage = Usage(u.prompt_tokens, u.cached_prompt_tokens,
                                       u.completion_tokens)
                    done.cost_usd = message.cost_usd
                    done.timings = Timings(t.queue_ms, t.ttft_ms, t.total_ms)
                yield Chunk(message.text, list(message.token_ids),
                            [TokenLogprobs(lp.token_id, lp.logprob,
                                           [(alt.token_id, alt.logprob) for alt in lp.top])
                             for lp in message.logprobs])
        except grpc.RpcError as e:
            raise Phi3Error(e.code(), e.details()) from None

    def collect(self) -> Completion:
        """Reads the rest of the stream and returns the completion."""
        for _ in self:
            pass
        return self.completion

    def cancel(self) -> None:
        self._call.cancel()


ROLES = {
    "system": phi3_pb2.ChatMessage.ROLE_SYSTEM,
    "user": phi3_pb2.ChatMessage.ROLE_USER,
    "assistant": phi3_pb2.ChatMessage.ROLE_ASSISTANT,
}


class Client:
    """A connection to one phi3-server (or the fleet router).

    address: HOST:PORT. api_key: sent as `authorization: Bearer KEY` (default
    $PHI3_API_KEY). tls: use TLS, verified against ca_cert (a PEM file path) or
    the system's roots; tls_server_name overrides the name checked in the
    server's certificate. route_key: sent as x-phi3-route-key (the fleet
    router keeps calls with one key on one replica). timeout: seconds per call.
    """

    def __init__(self, address: str = DEFAULT_ADDRESS, *, api_key: Optional[str] = None,
                 tls: bool = False, ca_cert: Optional[str] = None,
                 tls_server_name: Optional[str] = None, route_key: Optional[str] = None,
                 timeout: Optional[float] = None):
        if ca_cert is not None or tls_server_name is not None:
            tls = True
        if tls:
            roots = None
            if ca_cert is not None:
                with open(ca_cert, "rb") as f:
                    roots = f.read()
            options = [("grpc.ssl_target_name_override", tls_server_name)] \
                if tls_server_name else []
            self._channel = grpc.secure_channel(
                address, grpc.ssl_channel_credentials(root_certificates=roots), options)
        else:
            self._channel = grpc.insecure_channel(address)
        self.stub = phi3_pb2_grpc.Phi3Stub(self._channel)  # the raw stub, for anything else
        key = api_key if api_key is not None else os.environ.get("PHI3_API_KEY", "")
        self._metadata: List[Tuple[str, str]] = []
        if key:
            self._metadata.append(("authorization", f"Bearer {key}"))
        if route_key:
            self._metadata.append(("x-phi3-route-key", route_key))
        self._timeout = timeout

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def generate(self, prompt: str = "", *, prompt_tokens: Sequence[int] = (),
                 add_bos: bool = True, parse_special: bool = False, **options: Any) -> Stream:
        """Streams a completion of a raw prompt, given as text or as token ids
        (exactly one; ids are used as given). add_bos and parse_special apply to
        text. Options: see `request_options`."""
        sampling, stop = request_options(**options)
        request = phi3_pb2.GenerateRequest(prompt=prompt, prompt_tokens=list(prompt_tokens),
                                           add_special=add_bos, parse_special=parse_special,
                                           sampling=sampling, stop=stop)
        return Stream(self.stub.Generate(request, metadata=self._metadata,
                                         timeout=self._timeout))

    def chat(self, messages: Sequence[Tuple[str, str]], **options: Any) -> Stream:
        """Streams the assistant's reply to `messages`, (role, content) pairs in
        conversation order with role system, user or assistant."""
        sampling, stop = request_options(**options)
        try:
            turns = [phi3_pb2.ChatMessage(role=ROLES[role], content=content)
                     for role, content in messages]
        except KeyError as e:
            raise ValueError(f"chat role must be one of {sorted(ROLES)}, got {e}") from None
        request = phi3_pb2.ChatRequest(messages=turns, sampling=sampling, stop=stop)
        return Stream(self.stub.Chat(request, metadata=self._metadata, timeout=self._timeout))

    def tokenize(self, text: str, *, add_bos: bool = True,
                 parse_special: bool = False) -> List[int]:
        request = phi3_pb2.TokenizeRequest(text=text, add_special=add_bos,
                                           parse_special=parse_special)
        return list(self._unary(self.stub.Tokenize, request).token_ids)

    def info(self) -> phi3_pb2.GetModelInfoResponse:
        """The model, the engine's limits, prices and the server's version."""
        return self._unary(self.stub.GetModelInfo, phi3_pb2.GetModelInfoRequest())

    def _unary(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self._timeout)
        except grpc.RpcError as e:
            raise Phi3Error(e.code(), e.details()) from None


def request_options(*, max_tokens: int = 0, temperature: Optional[float] = None,
                    top_k: int = 0, top_p: Optional[float] = None, min_p: float = 0.0,
                    repetition_penalty: Optional[float] = None, presence_penalty: float = 0.0,
                    frequency_penalty: float = 0.0, seed: int = 0,
                    logprobs: bool = False, top_logprobs: int = 0,
                    stop: Sequence[str] = (), stop_token_ids: Sequence[int] = (),
                    ignore_eos: bool = False
                    ) -> Tuple[phi3_pb2.SamplingOptions, phi3_pb2.StopOptions]:
    """Sampling and stop options; None and 0 leave the server's default (see
    proto/phi3/v1/phi3.proto for each range). max_tokens 0 = the server's."""
    sampling = phi3_pb2.SamplingOptions(
        top_k=top_k, min_p=min_p, presence_penalty=presence_penalty,
        frequency_penalty=frequency_penalty, seed=seed, logprobs=logprobs,
        top_logprobs=top_logprobs)
    if temperature is not None:
        sampling.temperature = temperature
    if top_p is not None:
        sampling.top_p = top_p
    if repetition_penalty is not None:
        sampling.repetition_penalty = repetition_penalty
    return sampling, phi3_pb2.StopOptions(max_tokens=max_tokens, stop=list(stop),
                                          stop_token_ids=list(stop_token_ids),
                                          ignore_eos=ignore_eos)
