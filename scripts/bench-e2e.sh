#!/usr/bin/env bash
# make bench-e2e: saslcert and its peer (Debian's mod_client_certs, made
# loadable by PEER.md's two one-line fixes in a temporary copy) side by side
# through throwaway Prosody servers on 127.0.0.1, driven by one lean Go client
# (internal/cmd/benche2e). Prints a table and ends with
#   RATIO login=<ours/peer> items=<ours/peer> append=<ours/peer> login_1m_vs_1k=<ours at 1M / ours at 1k>
# then the ejabberd 23.01 pair (mod_saslcert against ejabberd's CA-only EXTERNAL):
#   RATIO_EJABBERD login=<ours/ejabberd alone>
# Arguments go to benche2e (e.g. -rounds 10 -logins 300, -fill 0 to skip the
# 1M store, -peer-fill 100000, -profile DIR, -keep); see `benche2e -h`.
# Every process it starts is stopped at the end, on error and on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/deps.sh

bin=$(mktemp -d /tmp/saslcert-bench-e2e-bin.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ]; then kill -TERM "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== building saslcert and benche2e"
go build -o "$bin/saslcert" ./cmd/saslcert
go build -o "$bin/benche2e" ./internal/cmd/benche2e

echo "== machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n1); $(date -u '+%Y-%m-%d %H:%M UTC'); commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
# In the background so that a TERM to this script reaches benche2e (which then
# stops its servers) instead of waiting for it.
"$bin/benche2e" -saslcert "$bin/saslcert" -plugin-dir plugins/prosody "$@" &
pid=$!
status=0
wait "$pid" || status=$?
pid=
exit "$status"
