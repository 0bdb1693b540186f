#!/usr/bin/env bash
# Installs Evidently for the drift benchmark in its own venv, benchmarks/.work/observe/evidently-venv
# (git-ignored), never into the project's .venv. Idempotent: skipped when the pinned version is there.
set -euo pipefail

EVIDENTLY_VERSION=0.7.23

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.work/observe/evidently-venv"
python="${PYTHON:-python3}"

if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('evidently') != '$EVIDENTLY_VERSION')" 2>/dev/null; then
    echo "evidently $EVIDENTLY_VERSION: already installed"
else
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "evidently==$EVIDENTLY_VERSION" numpy
fi
echo "Evidently ready in $venv"
