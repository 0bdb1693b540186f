#!/usr/bin/env bash
# Prepares the scanner benchmark, installing nothing into the project itself: detect-secrets 1.5.0
# in its own venv, benchmarks/.work/secrets/detect-secrets-venv (git-ignored), never in .venv.
# Idempotent: skipped when the pinned version is already there.
set -euo pipefail

DETECT_SECRETS_VERSION=1.5.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/benchmarks/.work/secrets"
venv="$work/detect-secrets-venv"
python="${PYTHON:-python3}"

if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('detect-secrets') != '$DETECT_SECRETS_VERSION')" 2>/dev/null; then
    echo "detect-secrets $DETECT_SECRETS_VERSION: already installed"
else
    mkdir -p "$work"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "detect-secrets==$DETECT_SECRETS_VERSION"
fi
echo "Scanner benchmark ready: .venv/bin/python benchmarks/secrets/scan.py"
