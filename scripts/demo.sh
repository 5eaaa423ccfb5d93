#!/usr/bin/env bash
# make demo: a throwaway Prosody on 127.0.0.1 with mod_saslcert and the saslcert
# component on SQLite in a temp dir; a Go client uploads a certificate, logs in
# with SASL EXTERNAL, revokes it and is refused. Everything it starts is stopped
# at the end, unless DEMO_KEEP=1.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

./scripts/deps.sh
domain=example.org
component=certs.example.org
user=alice
password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

work=$(mktemp -d /tmp/saslcert-demo.XXXXXX)
chmod 700 "$work"
pids=()
cleanup() {
  status=$?
  if [ "${DEMO_KEEP:-}" = 1 ] && [ $status = 0 ]; then return; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  if [ $status != 0 ]; then
    echo "--- prosody log (tail)"; tail -n 40 "$work/prosody.log" 2>/dev/null || true
    echo "--- saslcert log (tail)"; tail -n 40 "$work/saslcert.log" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_port() { # host port what
  for _ in $(seq 1 100); do
    if (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "demo: $3 did not open $1:$2" >&2; return 1
}
wait_log() { # file pattern what
  for _ in $(seq 1 100); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "demo: $3: '$2' not seen in $1" >&2; return 1
}

echo "== building saslcert"
go build -o "$work/saslcert" ./cmd/saslcert
go build -o "$work/demo-client" ./internal/cmd/demo

c2s=$(free_port); cport=$(free_port)
echo "== throwaway Prosody for $domain on 127.0.0.1:$c2s (component port $cport), files in $work"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=$domain" \
  -addext "subjectAltName=DNS:$domain,DNS:$component" \
  -keyout "$work/server.key" -out "$work/server.crt" 2>/dev/null
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$work/component.secret"
chmod 600 "$work/component.secret" "$work/server.key"

{
  cat <<LUA
-- throwaway settings for the demo
run_as_root = true
pidfile = "$work/prosody.pid"
data_path = "$work/prosody-data"
log = { debug = "$work/prosody.log" }
interfaces = { "127.0.0.1" }
c2s_ports = { $c2s }
s2s_ports = { }
c2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
authentication = "internal_hashed"
c2s_require_encryption = true
ssl = { certificate = "$work/server.crt", key = "$work/server.key" }
modules_enabled = { "disco", "saslauth", "tls", "ping", "roster" }
modules_disabled = { "s2s" }

LUA
  echo "-- what \`saslcert prosody config\` prints:"
  "$work/saslcert" prosody config --domain "$domain" --component "$component" \
    --secret-file "$work/component.secret" --plugin-dir "$repo/plugins/prosody" --component-port "$cport"
} > "$work/prosody.cfg.lua"
mkdir -p "$work/prosody-data"
sed -n '/what `saslcert prosody config` prints/,$p' "$work/prosody.cfg.lua" | sed 's/^/   | /'

prosody -F --config "$work/prosody.cfg.lua" > "$work/prosody.out" 2>&1 &
pids+=($!)
wait_log "$work/prosody.log" "into c2s" "prosody" 2>/dev/null || wait_port 127.0.0.1 "$c2s" prosody
wait_port 127.0.0.1 "$cport" "prosody (component port)"
prosodyctl --config "$work/prosody.cfg.lua" register "$user" "$domain" "$password" >/dev/null
echo "   registered $user@$domain (password login only, so far)"

echo "== saslcert serve: component $component, SQLite in $work/data"
SASLCERT_SECRET_FILE="$work/component.secret" "$work/saslcert" serve \
  --server-addr "127.0.0.1:$cport" --component "$component" --domain "$domain" \
  --data-dir "$work/data" > "$work/saslcert.log" 2>&1 &
pids+=($!)
wait_log "$work/saslcert.log" "connected" "saslcert serve"
sed 's/^/   | /' "$work/saslcert.log"

keep_args=()
[ "${DEMO_KEEP:-}" = 1 ] && keep_args=(-keep)
"$work/demo-client" -addr "127.0.0.1:$c2s" -jid "$user@$domain" -password "$password" \
  -ca "$work/server.crt" -out "$work/client" "${keep_args[@]}"

echo
echo "== the component's log"
sed 's/^/   | /' "$work/saslcert.log"
if [ "${DEMO_KEEP:-}" = 1 ]; then
  cat <<MSG

DEMO_KEEP=1: left running (Prosody pid ${pids[0]}, saslcert pid ${pids[1]}).
  connect:     $user@$domain at 127.0.0.1:$c2s (STARTTLS; server certificate $work/server.crt)
  certificate: $work/client/client.crt, key $work/client/client.key (SASL EXTERNAL)
  password:    $password
  inspect:     $work/saslcert cert inspect --jid $user@$domain $work/client/client.crt
  stop:        kill ${pids[*]}; rm -rf $work
MSG
fi
