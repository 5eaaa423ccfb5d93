# saslcert: make test runs everything CI runs; make demo shows the whole story.
GO        ?= go
GOBIN     := $(shell $(GO) env GOPATH)/bin
PKGS      := ./...
TESTFLAGS ?= -count=1 -timeout 30m

.PHONY: all build deps lint test unit bench fuzz clean demo bench-e2e soak package

all: build

build:
	$(GO) build -o bin/saslcert ./cmd/saslcert

deps:
	./scripts/deps.sh
	./scripts/install-ca-tools.sh

lint: deps
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GOBIN)/staticcheck $(PKGS)
	luacheck --no-color plugins/prosody

# Unit, contract, fuzz-seed and integration tests (real SQLite files, real Prosody).
test: lint
	SASLCERT_REQUIRE_PROSODY=1 SASLCERT_REQUIRE_CA_TOOLS=1 SASLCERT_REQUIRE_POSTGRES=1 SASLCERT_REQUIRE_PACKAGE=1 SASLCERT_REQUIRE_POEZIO=1 $(GO) test $(TESTFLAGS) $(PKGS)

# Quick loop for development: no lint, no deps.
unit:
	$(GO) test -count=1 -short $(PKGS)

bench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 60m $(BENCHFLAGS) ./sasl ./storage/... ./xep0257 ./internal/cluster ./oauth

# Run each fuzz target for FUZZTIME (default 1m).
FUZZTIME ?= 1m
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin dist

# The Debian package dist/saslcert_<version>_<arch>.deb (binary, Prosody plugin, systemd unit, config).
package:
	./scripts/package.sh

# The whole story on a throwaway Prosody: upload, EXTERNAL login, revoke, refused.
demo:
	./scripts/demo.sh

# saslcert and its peer (mod_client_certs) side by side through Prosody; ends with a RATIO line (docs/BENCHMARKS.md).
bench-e2e:
	./scripts/bench-e2e.sh $(BENCHE2EFLAGS)

# The load run of internal/load for SOAKTIME (200 clients through Prosody: EXTERNAL logins, items, appends,
# revokes, disables; fails on any wrong answer). make test runs it for 10 s.
SOAKTIME ?= 10m
SOAKCLIENTS ?= 200
soak: deps
	SASLCERT_REQUIRE_PROSODY=1 $(GO) test -count=1 -timeout 3h -v -run '^TestIntegrationLoad$$' ./internal/load \
	  -args -load.clients=$(SOAKCLIENTS) -load.duration=$(SOAKTIME) -load.report=$(CURDIR)/soak-report.md
	SASLCERT_REQUIRE_PROSODY=1 $(GO) test -count=1 -timeout 3h -v \
	  -run '^TestIntegration(Kill9DuringAppends|ProsodyRestartUnderLoad|FrozenComponentDuringLogins)$$' ./internal/hostile \
	  -args -hostile.kill-appends=5000 -hostile.kill-after=2000 -hostile.restart-load=1m
