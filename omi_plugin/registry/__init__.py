"""OCI distribution client: push image layouts and model artifacts to registries, pull base images by digest.

Pure Python and stdlib only, so it runs as a sandboxed process launched by the Pants plugin
(`python -m omi_plugin.registry push|pull ...`) and as a library. Transport and authentication (`transport`,
`auth`, `client`) know nothing about layouts; the verbs (`push`, `pull`) join them to `omi_plugin.oci.layout`.
"""
