"""A repository of a team adopting omi, as the README's "Use omi in your repository" section tells it to write, and
the vanilla Pants 2.17.1 it runs (pip-installed, not this repository's launcher). Shared by the adoption test and
`bench/adoption.py`; nothing of omi's sources goes into it but the wheels it names in `find_links`."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, List, Optional

REPO = Path(__file__).resolve().parents[2]
PANTS_VERSION = "2.17.1"
PEX_VERSION = "2.1.137"
MODEL_DIR = "models/digits"
MODEL_EXAMPLE = REPO / "examples/digits_onnx"  # the model the team packages: its file and model.yaml


def cache_root() -> Path:
    return Path(os.environ.get("OMI_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                / "omi")


def _run(argv: List[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)


def vanilla_pants() -> Path:
    """`pip install pantsbuild.pants==2.17.1` in a venv of its own (kept in omi's cache: it holds only Pants)."""
    venv = cache_root() / f"vanilla-pants-{PANTS_VERSION}"
    if not (venv / "bin" / "pants").exists():
        pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        pythons = sorted(glob.glob(str(pyenv / "versions/3.9.*/bin/python3.9"))) or [shutil.which("python3.9") or ""]
        shutil.rmtree(venv, ignore_errors=True)
        _run([pythons[-1], "-m", "venv", str(venv)])
        cert = "/etc/ssl/certs/ca-certificates.crt"
        _run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check",
              *(["--cert", cert] if os.path.exists(cert) else []), f"pantsbuild.pants=={PANTS_VERSION}"],
             env={**os.environ, "PIP_CONFIG_FILE": "/dev/null"})
    return venv / "bin" / "pants"


def machine_env() -> Dict[str, str]:
    """What these machines need of any Pants, not of omi: Pants's `pex` tool built from PyPI (GitHub is out of
    reach; `./pants` built it), the machine's CA bundle, and no global pip config."""
    pex = cache_root() / "pex-cli" / f"pex-v{PEX_VERSION}"
    digest, size = hashlib.sha256(pex.read_bytes()).hexdigest(), pex.stat().st_size
    env = {
        "PANTS_PEX_CLI_URL_TEMPLATE": f"file://{pex.parent}/pex-{{version}}",
        "PANTS_PEX_CLI_KNOWN_VERSIONS": json.dumps([f"v{PEX_VERSION}|{arch}|{digest}|{size}"
                                                    for arch in ("linux_x86_64", "linux_arm64")]),
        "PANTS_SUBPROCESS_ENVIRONMENT_ENV_VARS": '["PIP_CONFIG_FILE=/dev/null"]',
        "PANTS_IGNORE_WARNINGS": '["DEPRECATED: Running Pants in an external Python interpreter"]',
    }
    if os.path.exists("/etc/ssl/certs/ca-certificates.crt"):
        env["PANTS_CA_CERTS_PATH"] = "/etc/ssl/certs/ca-certificates.crt"
    return env


def build_wheels(checkout: Path, pants_args: List[str], out: Path) -> List[Path]:
    """`./pants --filter-target-type=python_distribution package ::` in `checkout`; the wheels copied to `out`."""
    _run(["./pants", "--no-dynamic-ui", *pants_args, "--filter-target-type=python_distribution", "package", "::"],
         cwd=checkout)
    out.mkdir(parents=True, exist_ok=True)
    wheels = sorted((checkout / "dist").glob("omi_*.whl"))
    for wheel in wheels:
        shutil.copyfile(wheel, out / wheel.name)
    return [out / w.name for w in wheels]


def readme_section() -> str:
    text = (REPO / "README.md").read_text()
    start = text.index("## Use omi in your repository")
    return text[start:text.index("\n## ", start + 3)]


def readme_file(section: str, path: str) -> str:
    """The first fenced block after the README names `path`: what it tells a user to write there."""
    start = section.index("```", section.index(f"`{path}`"))
    start = section.index("\n", start) + 1
    return section[start:section.index("```", start)]


def write_adopter(root: Path, wheels: Path) -> None:
    """Only what the README section says, the wheel directory standing in for PyPI until omi is published there; the
    team's own code and tests beside; one git commit."""
    section = readme_section()
    files = {path: readme_file(section, path) for path in
             ("pants.toml", "3rdparty/python/requirements.txt", "3rdparty/python/BUILD", f"{MODEL_DIR}/BUILD")}
    files["pants.toml"] = files["pants.toml"].replace("/path/to/omi-wheels", str(wheels))
    files["src/app/greeting.py"] = 'def greeting(name: str) -> str:\n    return f"hello {name}"\n'
    files["src/app/greeting_test.py"] = ("from app.greeting import greeting\n\n\ndef test_greeting():\n"
                                         '    assert greeting("omi") == "hello omi"\n')
    files["src/app/BUILD"] = "python_sources()\npython_tests(name=\"tests\")\n"
    files[".gitignore"] = "/dist/\n/.pids/\n/.pants.d/\n"
    for path, content in files.items():
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
    shutil.copyfile(MODEL_EXAMPLE / "model.onnx", root / MODEL_DIR / "model.onnx")
    yaml = (MODEL_EXAMPLE / "model.yaml").read_text().replace("name: digits-onnx", "name: digits")
    (root / MODEL_DIR / "model.yaml").write_text(yaml)
    _run(["git", "init", "-q"], cwd=root)
    commit(root, "models")


def commit(root: Path, message: str) -> None:
    _run(["git", "add", "-A"], cwd=root)
    _run(["git", "-c", "user.name=team", "-c", "user.email=team@localhost", "commit", "-qm", message], cwd=root)


def pants_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment the vanilla Pants runs in: none of this shell's PANTS_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANTS_")}
    return {**env, **machine_env(), **(extra or {})}
