#!/usr/bin/env bash
# Creates (once) the virtualenv target/py-venv, installs maturin and pytest into it, then builds
# and installs the fwledger wheel exactly as the README tells users: `pip install
# ./bindings/python`. Idempotent; prints the venv's python on stdout, progress on stderr.
# PYTHON picks the interpreter (default python3, >= 3.9), PY_VENV the venv directory.
set -euo pipefail
root="$(cd "$(dirname "$0")/../../.." && pwd)"
cd "$root"
venv="${PY_VENV:-$root/target/py-venv}"
python="${PYTHON:-python3}"
log() { printf '[py-venv] %s\n' "$*" >&2; }

if [ ! -x "$venv/bin/python" ]; then
    log "creating $venv with $("$python" --version 2>&1)"
    "$python" -m venv "$venv" >&2
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
log "installing maturin, pytest and mypy (for the stub check)"
"$venv/bin/python" -m pip install -q "maturin>=1.9.4,<2" "pytest>=7" "mypy>=1.11" >&2
log "building and installing the wheel: pip install ./bindings/python"
start=$(date +%s)
# --force-reinstall: the version number does not change between builds of the working tree.
"$venv/bin/python" -m pip install -q --force-reinstall --no-deps ./bindings/python >&2
log "wheel built and installed in $(( $(date +%s) - start )) s"
echo "$venv/bin/python"
