"""A small, pure-Python OCI data model and writer: layers, descriptors, config, manifest, index, image layout.

Nothing here imports Pants, so the same code runs inside build sandboxes, in the checker and in tests.
"""
