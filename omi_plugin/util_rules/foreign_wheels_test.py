"""Pex's refusal to pick another platform's wheels, made one line that names the distribution."""

from omi_plugin.util_rules.foreign_wheels import pex_error

# What Pex 2.1.137 prints for a lockfile whose grpcio has no aarch64 wheel (its aarch64 files taken out of
# runtime.lock), resolving for omi's arm64 complete platform.
NO_AARCH64_GRPCIO = """\
Failed to resolve compatible artifacts from lock /tmp/bad.lock for 1 target:
1. cp311-cp311-manylinux_2_36_aarch64:
    Failed to resolve all requirements for complete platform cp311-cp311-manylinux_2_36_aarch64 from /tmp/bad.lock:

Configured with:
    build: True
    use_wheel: True

Dependency on grpcio not satisfied, 1 incompatible candidate found:
1.) grpcio 1.67.1 (via: grpcio) does not have any compatible artifacts:
    https://files.pythonhosted.org/packages/75/7a/766149dcfa2dfa81835bf7df623944c1f636a15fcb9b6138ebe29baf0bc6/grpcio-1.67.1-cp311-cp311-musllinux_1_1_x86_64.whl
    https://files.pythonhosted.org/packages/59/2c/b60d6ea1f63a20a8d09c6db95c4f9a16497913fb3048ce0990ed81aeeca0/grpcio-1.67.1-cp311-cp311-linux_armv7l.whl
    https://files.pythonhosted.org/packages/f7/1e/0011408ebabf9bd69f4f87cc1515cbfe2094e5a32316f8714a75fd8ddfcb/grpcio-1.67.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
"""


def test_a_distribution_without_a_wheel_for_the_platform_is_named() -> None:
    assert pex_error(NO_AARCH64_GRPCIO, "linux/arm64") == (
        "the lockfile has no linux/arm64 wheel of grpcio 1.67.1 (its wheels are for linux_armv7l, "
        "manylinux_2_17_x86_64.manylinux2014_x86_64, musllinux_1_1_x86_64) (lock a version that ships one, or leave "
        "this platform out)")


def test_another_failure_keeps_pexs_last_lines() -> None:
    assert pex_error("Resolving...\nERROR: the lock is corrupt\n", "linux/arm64") == \
        "Resolving... ERROR: the lock is corrupt"
    assert pex_error("", "linux/arm64") == "Pex failed without a message"
