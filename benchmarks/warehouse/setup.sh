#!/usr/bin/env bash
# Prepares the warehouse benchmark, installing nothing into the project itself:
#   - tpchgen-cli (TPC-H data generator, a Rust binary on PyPI) in its own venv,
#     benchmarks/.work/warehouse/tpchgen-venv (git-ignored);
#   - the TPC-H database at scale SCALE (default 1), benchmarks/.work/warehouse/tpch-sf<SCALE>.duckdb.
# Idempotent: each step is skipped when its result is already there (SF 1: about 1 GB of disk while
# it builds, 0.3 GB kept; a few minutes on 2 cores the first time).
set -euo pipefail

TPCHGEN_VERSION=4.0.0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/benchmarks/.work/warehouse/tpchgen-venv"
python="${PYTHON:-python3}"
project_python="${SOPHIA_PYTHON:-$root/.venv/bin/python}"
scale="${SCALE:-1}"

if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('tpchgen-cli') != '$TPCHGEN_VERSION')" 2>/dev/null && [ -x "$venv/bin/tpchgen-cli" ]; then
    echo "tpchgen-cli $TPCHGEN_VERSION: already installed"
else
    mkdir -p "$(dirname "$venv")"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "tpchgen-cli==$TPCHGEN_VERSION"
fi

"$project_python" "$here/tpch.py" --scale "$scale"
