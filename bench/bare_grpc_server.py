"""The Python gRPC ceiling `serve.py` measures omi against: a grpc.aio KServe v2 server that lets grpcio parse
each ModelInfer request and answers with a response built once (the expected answer to the benchmark's request).

    python bench/bare_grpc_server.py PORT ANSWER    # ANSWER: the INT64 `predict` value for the benchmark's row

Whatever omi spends above this server per request is omi's own work (decoding, validation, the model, encoding).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from omi_runtime.grpc_stubs import grpc_predict_v2_pb2 as pb  # noqa: E402
from omi_runtime.grpc_stubs import grpc_predict_v2_pb2_grpc as pbg  # noqa: E402


class ConstantServicer(pbg.GRPCInferenceServiceServicer):
    def __init__(self, answer: int) -> None:
        self.response = pb.ModelInferResponse(model_name="digits", model_version="1")
        self.response.outputs.add(name="predict", datatype="INT64", shape=[1])
        self.response.raw_output_contents.append(np.array([answer], dtype="<i8").tobytes())

    async def ServerReady(self, request: pb.ServerReadyRequest, context: grpc.aio.ServicerContext):
        return pb.ServerReadyResponse(ready=True)

    async def ModelInfer(self, request: pb.ModelInferRequest, context: grpc.aio.ServicerContext):
        return self.response


async def main(port: int, answer: int) -> None:
    server = grpc.aio.server()
    pbg.add_GRPCInferenceServiceServicer_to_server(ConstantServicer(answer), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))
