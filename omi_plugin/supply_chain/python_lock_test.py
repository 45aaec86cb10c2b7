"""Reading a Pex lockfile's artifact hashes by file name."""

import json

import pytest

from omi_plugin.supply_chain.python_lock import PythonLockError, artifact_hashes, locked_versions

LOCK = "// header\n//   comment\n" + json.dumps({"locked_resolves": [{"locked_requirements": [{
    "project_name": "numpy", "version": "1.26.4", "artifacts": [
        {"algorithm": "sha256", "hash": "a" * 64, "url": "https://files/n/numpy-1.26.4-cp311-cp311-linux_x86_64.whl"},
        {"algorithm": "sha256", "hash": "b" * 64, "url": "https://files/l/local%2Bthing-1.0.tar.gz"}]}]}]})


def test_hashes_by_file_name():
    found = artifact_hashes(LOCK, "3rdparty/python/runtime.lock")
    assert found["numpy-1.26.4-cp311-cp311-linux_x86_64.whl"][0] == "a" * 64
    assert found["local+thing-1.0.tar.gz"][0] == "b" * 64


def test_not_a_lockfile_is_one_line_naming_it():
    with pytest.raises(PythonLockError, match=r"^x.lock: not a Pex lockfile .*pants generate-lockfiles"):
        artifact_hashes("{}", "x.lock")


def test_versions_by_normalised_project_name():
    lock = LOCK.replace('"numpy"', '"Omi_Runtime"')
    assert locked_versions(lock, "x.lock") == {"omi-runtime": "1.26.4"}


def test_versions_of_not_a_lockfile_is_one_line_naming_it():
    with pytest.raises(PythonLockError, match=r"^x.lock: not a Pex lockfile .*pants generate-lockfiles"):
        locked_versions("[]", "x.lock")
