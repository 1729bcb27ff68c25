#!/usr/bin/env bash
# demo.sh - publish the example estate into a fresh data directory, take in one order with
# every async descendant drained, then show the run's call tree and the static call graph.
# Run by `make demo` after the build; needs build/braid and python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
BRAID="${BRAID_BIN:-$root/build/braid}"
if [ ! -x "$BRAID" ]; then
    echo "demo: $BRAID is missing; run 'make' first" >&2
    exit 1
fi

data="$(mktemp -d "${TMPDIR:-/tmp}/braid-demo.XXXXXX")"
trap 'rm -rf "$data"' EXIT
# The command comes first, then its options: braid COMMAND --data DIR ...
braid() { local cmd="$1"; shift; "$BRAID" "$cmd" --data "$data" "$@"; }

step() { printf '\n==> %s\n' "$*"; }

step "Publishing the example integrations (callees first) into $data"
for f in \
    examples/pricing/line.json \
    examples/orders/validate.json \
    examples/warehouse/reserve.json \
    examples/crm/notify.json \
    examples/orders/follow-up.json \
    examples/orders/intake.json; do
    braid publish "$f"
done

step "Running orders/intake on examples/orders/order.json (--drain also runs the async children)"
record="$(braid run orders/intake --input @examples/orders/order.json --drain --json)"
root_id="$(printf '%s' "$record" | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')"
status="$(printf '%s' "$record" | python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')"
echo "root run $root_id: $status"

step "The run's output"
printf '%s' "$record" | python3 -c 'import json, sys; print(json.dumps(json.load(sys.stdin)["output"], indent=2))'

step "The whole call tree: braid show $root_id --tree"
braid show "$root_id" --tree

step "The static call graph of the latest versions: braid graph"
braid graph

step "A bad order is refused by orders/validate (the run fails with invalid_order)"
if braid run orders/intake --input @examples/orders/bad-order.json 2>&1; then
    echo "demo: the bad order was accepted" >&2
    exit 1
fi

step "Done. Try: braid --help"
