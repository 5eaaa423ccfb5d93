// Package cluster tests saslcert run as several instances on one shared
// PostgreSQL store, each attached to its own Prosody (Prosody does not
// cluster: one Prosody per node, each with its own component connection).
//
// TestIntegrationTwoServers (cluster_test.go) runs two real Prosody servers
// serving the same domain, two "saslcert serve" child processes (the built
// binary, --store postgres://..., --instance a and b) and one real
// PostgreSQL (internal/pgtest), and checks the story of issue 13: a
// certificate uploaded through A logs in on B; a revocation through B
// closes the live session on A; the CLI's revocation closes sessions on
// both; with PostgreSQL restarted under load logins get
// temporary-auth-failure and never succeed wrongly, then recover by
// themselves; with one component killed the other keeps serving its server.
package cluster
