// Package enrolle2e holds saslcert's enrollment integration tests: the whole
// story through a real Prosody with mod_saslcert (internal/stacktest, without
// its component) and the real "saslcert serve" binary, built once per test
// binary and run by stacktest's StartCommand with a TOML config: a user
// logs in with a password, requests a certificate with the XEP-0050 ad-hoc
// command, logs in with it (SASL EXTERNAL), revokes it (XEP-0257), and the
// live session is closed, the next login refused and the CA's CRL lists it;
// the same with step-ca as the issuer (internal/catest runs a real
// step-ca); logins with CA-issued certificates that were never uploaded
// (trusted roots), refused once revoked at the CA; and automatic renewal,
// run in-process with a clock that can be moved forward.
//
// Run them with
//
//	SASLCERT_REQUIRE_PROSODY=1 SASLCERT_REQUIRE_CA_TOOLS=1 go test -count=1 -v ./internal/enrolle2e/
//
// Without prosody or step-ca they skip, unless those variables are set
// (scripts/deps.sh and scripts/install-ca-tools.sh install them). Set
// SASLCERT_TEST_LOG=1 to see the component's log of passing tests too.
//
// The package has no non-test code besides this comment.
package enrolle2e
