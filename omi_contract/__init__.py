"""The OMI contract: what plugin, checker and runtime must agree on, stated once.

Standard library only and Python 3.9-compatible, because it is imported by the plugin inside Pants (CPython 3.9)
and by the runtime in the image (CPython 3.11); one Pants target per resolve owns these files (see BUILD).

- `interfaces`: the OMI interface.protocol pairs, which are served, by which transport and probe, on which port.
- `formats`: the model formats, their built-in handlers, libraries, KServe platform names and model files.
- `model_files`: what a model file is, from its first and last bytes, and why it is not what its format loads.
- `image`: paths inside the image, the user, environment variable names, label keys and the server's exit codes.
- `record`: the `omi-model.json` record (model.yaml with defaults applied) and every problem it can have.
"""
