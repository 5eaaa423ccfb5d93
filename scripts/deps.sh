#!/usr/bin/env bash
# Installs what saslcert's tests, demo and benchmarks need on a fresh Debian 12
# machine, skipping whatever is already there. Needs root for apt-get.
set -euo pipefail

STATICCHECK_VERSION=v0.8.2

need=()
command -v prosody >/dev/null 2>&1 || need+=(prosody)
# prosody-modules: mod_client_certs (the peer of make bench-e2e) and mod_delegation (a compatibility test)
[ -f /usr/lib/prosody/modules/mod_delegation/mod_delegation.lua ] || need+=(prosody-modules)
/usr/bin/python3 -c 'import slixmpp' >/dev/null 2>&1 || need+=(python3-slixmpp)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# curl and jq: the README's API walkthrough, run by internal/apie2e
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v jq >/dev/null 2>&1 || need+=(jq)
command -v gcc >/dev/null 2>&1 || need+=(gcc)
# luacheck: make lint checks the Prosody plugin (plugins/prosody, .luacheckrc)
command -v luacheck >/dev/null 2>&1 || need+=(lua-check)
# postgresql: internal/pgtest runs its own server (storage/postgres, internal/cluster)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
# adduser: the saslcert package depends on it (packaging tests install the package with dpkg -i)
command -v adduser >/dev/null 2>&1 || need+=(adduser)
# poezio and tmux: internal/clientse2e drives the poezio terminal client headless in tmux
command -v poezio >/dev/null 2>&1 || need+=(poezio)
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# ejabberd 23.01 and erlc: the ejabberd module (scripts/build-ejabberd-module.sh) and its tests
[ -f /usr/lib/x86_64-linux-gnu/ejabberd-23.01-1/include/logger.hrl ] || need+=(ejabberd)
command -v erlc >/dev/null 2>&1 || need+=(erlang-dev)

if [ ${#need[@]} -gt 0 ]; then
  echo "deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
  # The Debian package may start a system Prosody; tests run their own. Stop
  # it through its service, or else through its pid file: never by name,
  # which would end other users' Prosody processes too.
  if command -v service >/dev/null 2>&1 && service prosody stop >/dev/null 2>&1; then
    :
  elif [ -s /run/prosody/prosody.pid ]; then
    kill "$(cat /run/prosody/prosody.pid)" >/dev/null 2>&1 || true
  fi
  # The postgresql package starts a cluster of its own; tests run theirs.
  if command -v service >/dev/null 2>&1; then service postgresql stop >/dev/null 2>&1 || true; fi
  # Likewise the system ejabberd (tests run their own, with their own epmd).
  if command -v service >/dev/null 2>&1; then service ejabberd stop >/dev/null 2>&1 || true; fi
fi

gobin=$(go env GOPATH)/bin
if [ ! -x "$gobin/staticcheck" ] || ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  echo "deps: installing staticcheck $STATICCHECK_VERSION"
  go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
