"""OMI / ModelPack compliance checker: static rules over model.yaml and the built layouts, plus a live smoke test.

Pure Python, no Pants imports. The static rules (metadata, image, modelpack) run on CPython 3.9 inside Pants's
sandbox; `smoke` needs gRPC clients and runs under the runtime's CPython 3.11. See `catalog.py` for every rule id.
"""
