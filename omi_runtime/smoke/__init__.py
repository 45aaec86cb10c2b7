"""The live smoke test `pants check` runs against a model's runtime: start it per interface, talk to it as a platform
would, report one line per violation (`runner`), with the per-interface probes (`probes`) and tensor judging
(`tensors`). It ships with the server so that it is resolved with the model's own libraries."""
