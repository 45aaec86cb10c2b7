"""Generated gRPC/protobuf stubs for protos/*.proto. Regenerate with `python protos/generate.py`; never edit."""
