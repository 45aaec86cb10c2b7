"""Ahead-of-time bytecode: `.pyc` layers compiled by the image's own interpreter, so start-up never compiles."""
