// Package e2e holds saslcert's full-stack integration tests: a real Prosody
// with mod_saslcert, the real component (package component) running
// in-process on a real SQLite file, and real clients (internal/xmppclient,
// a raw XML client, and slixmpp as an unmodified third-party client).
//
// The stack, its clients and the raw client are internal/stacktest's
// (stacktest.Start, with a longer plugin and request timeout, debug logging
// and a quick reconnect: see newStack in stack_test.go); stack_test.go adds
// the logins that close themselves at the end of a test and the suite's
// assertions.
//
// The tests are named TestIntegration... and run with
//
//	SASLCERT_REQUIRE_PROSODY=1 go test -count=1 -v ./internal/e2e/
//
// Without Prosody installed they skip, unless SASLCERT_REQUIRE_PROSODY is
// set; the slixmpp test likewise needs python3-slixmpp (scripts/deps.sh
// installs both). Set SASLCERT_TEST_LOG=1 to see the component's log of
// passing tests too (failing tests always print its tail), and
// SASLCERT_PROSODY_LOG for Prosody's.
//
// regression_test.go holds regression tests for defects this suite found in
// other packages.
//
// The package has no non-test code besides this comment.
package e2e
