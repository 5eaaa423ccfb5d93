// Package prosodytest starts a throwaway, real Prosody server for tests.
//
// Status: ready. Start, Register, Restart, Stop and Log work against the
// Debian 12 prosody 0.12.3 package; prosodytest_test.go logs in with SASL
// PLAIN over STARTTLS, and plugins/prosody tests mod_saslcert with it.
//
// Start writes a config into a fresh temporary directory (pidfile, data,
// debug log, a TLS certificate for the domain made in Go; the global section
// and the certificate come from internal/prosodyconf, which the benchmark
// internal/cmd/benche2e shares), runs
// "prosody -F --config <file>" as a child process listening on 127.0.0.1
// only (one c2s and one component port, no s2s, no HTTP), waits until the
// log says both services listen (with a deadline of StartTimeout) and
// registers a cleanup that stops it. Failing tests get the tail of the log;
// set SASLCERT_PROSODY_LOG=1 (or =full) to see it always.
//
// The c2s TLS context asks for client certificates
// (c2s_ssl.verify = { "peer", "client_once" }); Prosody's default verifyext
// (lsec_continue) lets self-signed ones through, so SASL EXTERNAL tests can
// present any certificate. s.TLSConfig(certs...) makes a client config that
// trusts the server; s.DialClient negotiates a mellium client session.
//
// With Options.Plugin the repository's plugins/prosody/mod_saslcert.lua (and
// its saslcert_*.lib.lua parts) is loaded on the VirtualHost with the section
// plugins/prosody.Config renders, as admins get it from `saslcert prosody
// config` (saslcert_component = ComponentJID; the component secret is read
// from a file, as in the admins' Component section); it forwards
// users' urn:xmpp:saslcert:1 IQs to the component itself. With
// Options.Delegation prosody-modules' mod_delegation does that instead.
//
// Prosody quirks to know when asserting on its log: a TCP connection to the
// c2s port that closes at once makes Prosody 0.12 log "Error calling
// onconnect ... attempt to index a nil value (field 'conn')"; stanzas to a
// disconnected component log a warning "Component not connected".
//
// With Options.Include, Prosody includes an admin's configuration file
// (what `saslcert prosody config` printed, with its own plugin_paths,
// VirtualHost and Component sections) instead of the sections Start
// writes; Options.ComponentAddr then names the component port it sets.
//
// When prosody is not installed, Start skips the test unless the environment
// variable SASLCERT_REQUIRE_PROSODY is set, in which case it fails.
package prosodytest
