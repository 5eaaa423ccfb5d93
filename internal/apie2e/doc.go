// Package apie2e tests the /v1 organisation API end to end: the API on the
// service's HTTP listener (server.Service.API, AddRoutes), a real Prosody
// with the saslcert plugin (internal/stacktest), and live SASL EXTERNAL
// sessions. The leaver story: a session is live, the API revokes the
// account, the session is closed, the next login is refused and the audit
// log names the API client.
//
// Tests skip without Prosody unless SASLCERT_REQUIRE_PROSODY is set.
package apie2e
