"""`pants help` documents the plugin's targets and options."""

from __future__ import annotations

from conftest import Clone


def test_help_for_targets_and_options(packaged_clone: Clone) -> None:
    for topic, expected in (("omi_model", "model_files"), ("omi_debian_base", "lockfile"),
                            ("omi_oci_base", "pinned by digest"), ("omi", "default_base_image")):
        result = packaged_clone.pants("help", topic)
        assert expected in result.output, result.output[-2000:]
