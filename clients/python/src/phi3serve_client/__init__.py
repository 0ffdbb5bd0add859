"""Python client for phi3serve: `Client` makes typed calls to phi3.v1.Phi3;
the generated stubs are `phi3.v1.phi3_pb2` and `phi3.v1.phi3_pb2_grpc`."""
from phi3serve_client.client import (Chunk, Client, Completion, Phi3Error, Stream, Timings,
                                     TokenLogprobs, Usage)

__all__ = ["Chunk", "Client", "Completion", "Phi3Error", "Stream", "Timings", "TokenLogprobs",
           "Usage"]
