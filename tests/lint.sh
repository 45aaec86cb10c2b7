#!/usr/bin/env bash
# Lints the whole tree with a pinned ruff (ruff.toml), installed from PyPI into a venv under ~/.cache/omi on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
RUFF_VERSION=0.17.6
cache_root="${OMI_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/omi}"
venv="$cache_root/ruff-$RUFF_VERSION"
if [[ ! -x "$venv/bin/ruff" ]]; then
  echo "[omi tests] installing ruff $RUFF_VERSION into $venv" >&2
  python="$(ls "$cache_root"/pants-*/bin/python | head -n 1)"  # the ./pants bootstrap's CPython 3.9
  rm -rf "$venv"
  "$python" -m venv "$venv"
  PIP_CONFIG_FILE=/dev/null "$venv/bin/pip" install --quiet --disable-pip-version-check \
    ${OMI_PIP_CERT:+--cert "$OMI_PIP_CERT"} "ruff==$RUFF_VERSION"
fi
"$venv/bin/ruff" check .
