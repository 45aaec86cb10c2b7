#!/usr/bin/env bash
# Lints the tree: ruff (ruff.toml) and mypy (mypy.ini) at pinned versions, installed from PyPI into a venv under
# ~/.cache/omi on first use. mypy checks the plugin side against Pants's own venv (CPython 3.9) and the runtime
# against the exported `runtime` resolve (CPython 3.11), so it sees the libraries each side really imports.
# Usage: tests/lint.sh RUNTIME_PYTHON   (run-tests passes the exported runtime venv's interpreter)
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF_VERSION=0.17.6
MYPY_VERSION=1.14.1  # the last mypy line that still checks code for CPython 3.9, as Pants 2.17 runs the plugin
runtime_python="$1"
cache_root="${OMI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omi}"
pants_python="$(ls "$cache_root"/pants-*/bin/python | head -n 1)"  # the ./pants bootstrap's venv
# The machine's CA bundle, as ./pants uses it, where HTTPS goes through an inspecting proxy.
if [[ -z "${OMI_PIP_CERT:-}" && -f /etc/ssl/certs/ca-certificates.crt ]]; then
  OMI_PIP_CERT=/etc/ssl/certs/ca-certificates.crt
fi
venv="$cache_root/lint-ruff-$RUFF_VERSION-mypy-$MYPY_VERSION"
if [[ ! -x "$venv/bin/mypy" ]]; then
  echo "[omi tests] installing ruff $RUFF_VERSION and mypy $MYPY_VERSION into $venv" >&2
  rm -rf "$venv"
  "$pants_python" -m venv "$venv"
  PIP_CONFIG_FILE=/dev/null "$venv/bin/pip" install --quiet --disable-pip-version-check \
    ${OMI_PIP_CERT:+--cert "$OMI_PIP_CERT"} "ruff==$RUFF_VERSION" "mypy==$MYPY_VERSION"
fi
"$venv/bin/ruff" check .
"$venv/bin/mypy" --python-version 3.9 --python-executable "$pants_python" omi_contract omi_plugin omi_testutil build-support bench tests
# The runtime's mypy runs on CPython 3.11 itself: mypy parses with its own interpreter, and the runtime's libraries
# use syntax CPython 3.9 cannot read (e.g. `match` in packaging).
runtime_venv="$cache_root/lint-mypy-$MYPY_VERSION-py311"
if [[ ! -x "$runtime_venv/bin/mypy" ]]; then
  echo "[omi tests] installing mypy $MYPY_VERSION for CPython 3.11 into $runtime_venv" >&2
  rm -rf "$runtime_venv"
  "$runtime_python" -m venv "$runtime_venv"
  PIP_CONFIG_FILE=/dev/null "$runtime_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    ${OMI_PIP_CERT:+--cert "$OMI_PIP_CERT"} "mypy==$MYPY_VERSION"
fi
"$runtime_venv/bin/mypy" --python-version 3.11 --python-executable "$runtime_python" omi_contract omi_runtime examples
