#!/usr/bin/env bash
# Installs the CA servers saslcert's enrollment integration tests run against,
# into $(go env GOPATH)/bin, skipping whatever is already there at the pinned
# version:
#   step-ca    smallstep/certificates (built with CGO_ENABLED=0: the YubiKey
#              KMS needs libpcsclite otherwise)
#   estserver  globalsign/est's test EST server
# A cold step-ca build downloads ~300 MB of modules and takes 2.5-3.5 minutes
# on 2 vCPUs. The binaries are never committed.
set -euo pipefail

STEPCA_VERSION=v0.30.2
EST_VERSION=v1.0.6

gobin=$(go env GOPATH)/bin
mkdir -p "$gobin"

# has_module BIN MODULE VERSION: BIN exists and was built from MODULE@VERSION
# (go version -m reads the build info; "step-ca version" says 0000000-dev
# when built with go install).
has_module() {
  [ -x "$1" ] && go version -m "$1" 2>/dev/null | grep -E "^[[:space:]]+mod[[:space:]]+$2[[:space:]]+$3([[:space:]]|\$)" >/dev/null
}

if has_module "$gobin/step-ca" github.com/smallstep/certificates "$STEPCA_VERSION"; then
  :
else
  echo "install-ca-tools: building step-ca $STEPCA_VERSION (a few minutes when cold)"
  CGO_ENABLED=0 GOBIN="$gobin" go install "github.com/smallstep/certificates/cmd/step-ca@$STEPCA_VERSION"
fi

# "go install github.com/globalsign/est/cmd/estserver@v1.0.6" fails on a
# filtered module proxy that refuses the module's version list ("loading
# deprecation ... 403"), so build it from a throwaway module that requires
# the exact version.
if has_module "$gobin/estserver" github.com/globalsign/est "$EST_VERSION"; then
  :
else
  echo "install-ca-tools: building estserver $EST_VERSION"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  printf 'module estbuild\n\ngo 1.26\n\nrequire github.com/globalsign/est %s\n' "$EST_VERSION" >"$tmp/go.mod"
  (cd "$tmp" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -o "$gobin/estserver" github.com/globalsign/est/cmd/estserver)
fi
