"""`pants check`: the examples pass; a non-compliant target fails with precise one-line messages."""

from __future__ import annotations

from conftest import Clone


def test_examples_pass(packaged_clone: Clone) -> None:
    result = packaged_clone.pants("check", "examples::")
    assert "omi succeeded" in result.output or "✓ omi" in result.output, result.output[-3000:]
    # The arm64 images (digits-arm64, and the arm64 image of digits-multiarch) answered the smoke test with their own
    # interpreter under qemu.
    lines = result.output.splitlines()
    header = "omi smoke: the linux/arm64 image's own interpreter, under qemu-aarch64-static:"
    answered = [lines[i + 1] for i, line in enumerate(lines) if line == header]
    assert answered == ["omi smoke: OK, 0 violations"] * 2, result.output[-3000:]


def test_non_compliant_target_fails_with_every_violation(clone_factory) -> None:
    clone = clone_factory("clone-check")
    model_yaml = (clone.root / "examples/digits/model.yaml").read_text()
    clone.write("examples/digits/model.yaml",
                model_yaml.replace("interfaces: [kfserving.v1, kfserving.v2, modzy.v2]", "interfaces: [kfserving.v1]"))
    result = clone.pants("check", "examples/digits:digits", check=False)
    assert result.returncode != 0
    for missing in ("kfserving.v2", "modzy.v2"):
        expected = (f"examples/digits:digits: examples/digits/model.yaml: interfaces: {missing} is missing; "
                    f"OMI 1.0 requires kfserving.v2 and modzy.v2 (add {missing} to `interfaces`)")
        assert expected in result.output.splitlines(), result.output[-3000:]
    assert "Traceback (most recent call last)" not in result.output
