#!/usr/bin/env bash
# Builds the Debian package dist/saslcert_<version>_<arch>.deb (make package).
# The binary is built into a temporary directory with its version from
# git describe; nothing built is committed (dist/ is ignored). nfpm is a
# pinned Go module run with go run, so nothing needs installing.
# Environment: SASLCERT_DIST (output directory, default dist), GO (default go).
set -euo pipefail

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
go=${GO:-go}
dist=${SASLCERT_DIST:-dist}

# A Debian version starts with a digit and has no "-" (no Debian revision):
# tag v1.2.3 → 1.2.3, v1.2.3-4-gabc → 1.2.3+4.gabc, an untagged commit
# abc123 → 0.0.0~git.abc123; "-dirty" (uncommitted changes) becomes "+dirty".
if describe=$(git describe --tags --dirty --match 'v[0-9]*' 2>/dev/null); then
	deb_version=$(printf '%s' "${describe#v}" | sed -E 's/-([0-9]+)-g/+\1.g/; s/-dirty$/+dirty/; s/-/./g')
else
	describe=$(git describe --always --dirty 2>/dev/null || echo unknown)
	deb_version=0.0.0~git.$(printf '%s' "$describe" | sed -E 's/-dirty$/+dirty/; s/-/./g')
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The ejabberd module, compiled against the headers of Debian's ejabberd
# package, is shipped ready for ejabberd's contributed modules directory
# (/usr/lib/saslcert/ejabberd/mod_saslcert/{ebin,mod_saslcert.spec}) when
# ejabberd and erlang-dev are installed here (scripts/deps.sh installs them);
# without them the package is built without it, and says so.
cp packaging/nfpm.yaml "$tmp/nfpm.yaml"
if ./scripts/build-ejabberd-module.sh "$tmp/ejabberd/mod_saslcert/ebin" >"$tmp/ejabberd.log" 2>&1; then
	sed '/^#/d' packaging/nfpm-ejabberd.yaml >>"$tmp/nfpm.yaml"
else
	echo "package: built without the ejabberd module ($(tail -n1 "$tmp/ejabberd.log"))" >&2
fi

arch=$("$go" env GOARCH)
CGO_ENABLED=1 "$go" build -trimpath -ldflags "-s -w -X main.version=$describe" -o "$tmp/saslcert" ./cmd/saslcert

mkdir -p "$dist"
rm -f "$dist"/saslcert_*.deb
SASLCERT_VERSION=$deb_version SASLCERT_ARCH=$arch SASLCERT_BINARY=$tmp/saslcert SASLCERT_EJABBERD=$tmp/ejabberd \
	"$go" run "$NFPM" package --config "$tmp/nfpm.yaml" --packager deb --target "$dist/" >"$tmp/nfpm.log" 2>&1 ||
	{ cat "$tmp/nfpm.log" >&2; exit 1; }
ls "$dist"/saslcert_*.deb
