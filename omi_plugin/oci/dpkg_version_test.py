"""Reading a Debian package's version from image layers, as Debian and distroless images record it."""

import io
import json

from omi_plugin.oci import dpkg_version
from omi_plugin.oci import media_types as mt
from omi_plugin.oci.tar import Entry, write_layer

STATUS = (b"Package: libc6\nStatus: install ok installed\nVersion: 2.36-9\n\n"
          b"Package: python3.11-minimal\nStatus: install ok installed\nDescription: minimal\n more\n"
          b"Version: 3.11.2-6\n")


def _layer(tmp_path, name: str, entries) -> dict:
    out = io.BytesIO()
    write_layer(entries, out)
    (tmp_path / name).write_bytes(out.getvalue())
    return {"path": str(tmp_path / name), "media_type": mt.LAYER_TAR}


def test_a_status_file_and_a_later_layers_record(tmp_path, capsys) -> None:
    first = _layer(tmp_path, "a", [Entry.file("var/lib/dpkg/status", STATUS)])
    assert dpkg_version.package_version([first], "python3.11-minimal") == "3.11.2-6"
    later = _layer(tmp_path, "b", [Entry.file("var/lib/dpkg/status.d/python3.11-minimal",
                                              b"Package: python3.11-minimal\nVersion: 3.11.2-6+deb12u9\n")])
    assert dpkg_version.package_version([first, later], "python3.11-minimal") == "3.11.2-6+deb12u9"
    assert dpkg_version.package_version([first, later], "python3.12-minimal") is None
    (tmp_path / "layers.json").write_text(json.dumps([first, later]))
    assert dpkg_version.main(["python3.11-minimal", str(tmp_path / "layers.json")]) == 0
    assert capsys.readouterr().out == "3.11.2-6+deb12u9\n"
