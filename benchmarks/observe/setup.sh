#!/usr/bin/env bash
# Prepares the drift benchmark, installing nothing into the project itself:
#   - Evidently in its own venv, benchmarks/.work/observe/evidently-venv (git-ignored), never in the
#     project's .venv. pandas is pinned below 3: Evidently 0.7.23 accepts any pandas but does not
#     import under pandas 3 (pandas.core.dtypes.common.infer_dtype_from_object is gone);
#   - the prompt embeddings: two topic pools of generated prompts encoded once with Sophia's bundled
#     all-MiniLM-L6-v2 by the project's Python, benchmarks/.work/observe/prompts-*.npy.
# Idempotent: each step is skipped when its result is already there.
set -euo pipefail

EVIDENTLY_VERSION=0.7.23
PANDAS_VERSION=2.3.3
NUMPY_VERSION=2.4.6

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="$root/benchmarks/.work/observe"
venv="$work/evidently-venv"
python="${PYTHON:-python3}"
project_python="${SOPHIA_PYTHON:-$root/.venv/bin/python}"

if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('evidently') != '$EVIDENTLY_VERSION' or m.version('pandas') != '$PANDAS_VERSION')" \
    2>/dev/null; then
    echo "evidently $EVIDENTLY_VERSION (pandas $PANDAS_VERSION): already installed"
else
    mkdir -p "$work"
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
        "evidently==$EVIDENTLY_VERSION" "pandas==$PANDAS_VERSION" "numpy==$NUMPY_VERSION"
fi

if [ -f "$work/prompts-a.npy" ] && [ -f "$work/prompts-b.npy" ]; then
    echo "prompt embeddings: already in $work"
else
    PYTHONPATH="$root/src" "$project_python" "$here/drift.py" embed --out "$work"
fi
echo "Drift benchmark ready: $venv/bin/python benchmarks/observe/drift.py run"
