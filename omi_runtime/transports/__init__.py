"""Transports: one module per wire protocol, each translating between its messages and the dataplane.

- kserve_v1_rest: KServe v1 REST (kfserving.v1), served together with the v2 REST routes of kserve_v2_rest.
- kserve_v2_grpc: KServe v2 / Open Inference Protocol gRPC (kfserving.v2).
- modzy_v2_grpc: Modzy v2 gRPC (modzy.v2).
- grpc_server: what both gRPC transports share (message limits, health, reflection).
"""
