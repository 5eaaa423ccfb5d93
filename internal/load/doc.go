// Package load drives the whole saslcert stack (a real Prosody with
// mod_saslcert, the saslcert serve binary on a real
// SQLite file) with many concurrent clients and checks every answer.
//
// Each client owns one account and keeps a session open (logged in with
// SASL EXTERNAL); it loops until the end of the run over a mix of
//
//   - EXTERNAL logins on new connections: with an active certificate (must
//     succeed, bound to the client's own account), with a revoked or disabled
//     one, or one never uploaded (must fail with not-authorized);
//   - XEP-0257 <items/>: must list exactly the certificates the client knows
//     to be active (name and DER);
//   - XEP-0257 <append/>, <revoke/> and <disable/>: must succeed.
//
// An answer that contradicts the client's model is a wrong answer; the run
// fails on any. At the end the store must match every client's model, the
// component and Prosody must still be running on their first connection,
// and the report gives throughput and latency percentiles per operation.
//
// make test runs the short version (200 clients for 10 s); longer runs:
//
//	SASLCERT_REQUIRE_PROSODY=1 go test -count=1 -timeout 3h -v -run '^TestIntegrationLoad$' ./internal/load \
//	    -args -load.clients=200 -load.duration=60s -load.report=/tmp/load.md
//
// (make soak runs it for SOAKTIME). The package has no non-test code besides
// this comment.
package load
