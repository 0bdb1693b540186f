#!/usr/bin/env bash
# Installs what the gateway benchmark needs, and nothing into the project itself:
#   - nginx (the upstream that answers instantly) and wrk (the load generator), from Debian;
#   - LiteLLM proxy in its own venv, benchmarks/.peers/litellm-venv;
#   - Portkey's gateway in its own npm folder, benchmarks/.peers/portkey.
# Idempotent: each step is skipped when its result is already there. Needs root for apt-get.
set -euo pipefail

LITELLM_VERSION=1.108.7
PORTKEY_VERSION=1.15.2

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
peers="$(cd "$here/.." && pwd)/.peers"
python="${PYTHON:-python3}"
mkdir -p "$peers"

install_debian_tools() {
    local packages=() had_nginx=yes
    command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || { packages+=(nginx-light); had_nginx=no; }
    command -v wrk >/dev/null || packages+=(wrk)
    if [ ${#packages[@]} -eq 0 ]; then
        echo "nginx and wrk: already installed"
        return
    fi
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${packages[@]}"
    # A freshly installed nginx package may start a system nginx on port 80; the benchmark
    # runs its own, so stop that one (never one that was there before this script).
    if [ "$had_nginx" = no ] && [ -f /run/nginx.pid ]; then
        $sudo /usr/sbin/nginx -s quit || true
    fi
}

install_litellm() {
    local venv="$peers/litellm-venv"
    if "$venv/bin/python" -c "import importlib.metadata as m, sys; \
sys.exit(m.version('litellm') != '$LITELLM_VERSION')" 2>/dev/null \
        && [ -x "$venv/bin/litellm" ]; then
        echo "LiteLLM $LITELLM_VERSION: already installed"
        return
    fi
    [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION"
}

install_portkey() {
    local dir="$peers/portkey"
    local package_json="$dir/node_modules/@portkey-ai/gateway/package.json"
    if [ -f "$package_json" ] && grep -q "\"version\": \"$PORTKEY_VERSION\"" "$package_json"; then
        echo "Portkey gateway $PORTKEY_VERSION: already installed"
        return
    fi
    mkdir -p "$dir"
    [ -f "$dir/package.json" ] || echo '{"name": "sophia-bench-peers", "private": true}' >"$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund "@portkey-ai/gateway@$PORTKEY_VERSION")
}

install_debian_tools
install_litellm
install_portkey
echo "Peers ready in $peers"
