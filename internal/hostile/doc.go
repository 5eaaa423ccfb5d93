// Package hostile attacks the whole saslcert stack and breaks it on purpose:
// a real Prosody with mod_saslcert, the real component
// (in-process, or "saslcert serve" as a child process where it must be
// killed) and a real SQLite file, all started by internal/stacktest.
//
//   - TestIntegrationHostileInputs: over a hundred hostile inputs from
//     clients, users, the server side and other components; each must get
//     its exact answer, leave the store's digest unchanged and leave the
//     component answering.
//   - Faults: kill -9 during 1,000 concurrent appends, a Prosody restart
//     under load, SQLite locked by another process, a full disk (tmpfs, or
//     RLIMIT_FSIZE where mounting is not allowed), the component down or
//     frozen during logins.
//   - Accounts: spellings that are the account itself, deleted and
//     re-registered accounts.
//   - Secrets: not in argv, environment or logs; private file modes.
//
// Run with
//
//	SASLCERT_REQUIRE_PROSODY=1 go test -count=1 -v ./internal/hostile/
//
// Flags for longer runs: -hostile.kill-appends, -hostile.kill-after,
// -hostile.restart-load, -hostile.diskfull (see faults_test.go). The
// package has no non-test code besides this comment.
package hostile
