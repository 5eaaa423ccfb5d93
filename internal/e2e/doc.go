// Package e2e holds saslcert's full-stack integration tests: a real Prosody
// (internal/prosodytest) with mod_saslcert, the real
// component (package component) running in-process on a real SQLite file,
// and real clients (internal/xmppclient, a raw XML client, and slixmpp as an
// unmodified third-party client).
//
// The tests are named TestIntegration... and run with
//
//	SASLCERT_REQUIRE_PROSODY=1 go test -count=1 -v ./internal/e2e/
//
// Without Prosody installed they skip, unless SASLCERT_REQUIRE_PROSODY is
// set; the slixmpp test likewise needs python3-slixmpp (scripts/deps.sh
// installs both). Set SASLCERT_TEST_LOG=1 to see the component's log of
// passing tests too (failing tests always print it), and SASLCERT_PROSODY_LOG
// for Prosody's.
//
// bugs_test.go holds tests (TestIntegrationBug...) that show defects found in
// other packages; they fail until those are fixed.
//
// The package has no non-test code besides this comment.
package e2e
