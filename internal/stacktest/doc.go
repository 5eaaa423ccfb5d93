// Package stacktest runs the whole saslcert stack for tests that attack it:
// a real Prosody (internal/prosodytest) with mod_saslcert,
// the real component on a real SQLite file in a temporary directory, and
// clients that can send anything.
//
// Start(tb, opts) starts Prosody and the component and waits until the
// component is connected. The component runs in-process (as cmd/saslcert
// serve wires it) or, with Options.Process, as a child process "saslcert
// serve" built once per test binary with go build (needed to kill -9 it). The
// component secret reaches the child in a 0600 file named by
// SASLCERT_SECRET_FILE, never in its argv.
//
// Helpers:
//
//   - Stack.Digest: a SHA-256 over every certificate record (WalkCerts) and
//     every audit entry, read through a separate store handle, to prove that
//     a refused request changed nothing;
//   - Stack.AddCert: store a certificate directly, after the same
//     sasl.CheckUpload an upload gets (set-up without going through XMPP);
//   - Stack.DialRaw / RawClient: a hand-written c2s client (STARTTLS with an
//     optional client certificate, raw <auth/> and Restart, bind, a stanza
//     pipelined behind the bind request with BindThen, raw IQs), for stanzas
//     no library would send; DialRawServer, and OpenRaw with StartTLS, give
//     the same client on any prosodytest server (plugins/prosody's tests,
//     with a stand-in component), or without TLS; Node.Outcome and
//     Node.Condition read the answers;
//   - Stack.LoginPassword, Stack.LoginCert, Stack.Dial: xmppclient sessions
//     (PLAIN, or EXTERNAL with a certificate and an authzid); Items and
//     ItemNames: the account's certificates, as such a client lists them;
//   - Stack.Comp, Component.Stop, Stack.StartComponent: stop the component
//     and start a new one on the same database (Component.Log is each one's
//     log); Stack.RestartProsody: restart Prosody and wait for the component
//     to reconnect by itself;
//   - Stack.StartCommand: run the built saslcert with arguments of the
//     caller's choice (e.g. serve --config FILE) as the stack's component,
//     with Options.NoComponent; Stack.SecretFile is the 0600 file holding
//     the component secret, for such a config; Stack.StartExec: the same
//     with a program of the caller's choice (e.g. an installed saslcert run
//     as its systemd unit would run it);
//   - LogBuffer: a goroutine-safe log sink (for an in-process component or
//     slog handler a test wires itself);
//   - Options.Forge: loads a test-only Prosody module with which a logged-in
//     client makes the server itself send a stanza (from its domain) and get
//     the reply: it stands in for a buggy or compromised server module, to
//     test what the component does with hostile input from the server side;
//   - Options.Rogue and Stack.DialRawComponent: a second component on the
//     same Prosody, and raw XEP-0114 connections (also as the saslcert
//     component, e.g. with a wrong secret);
//   - Stack.LockDB: another process holding SQLite's write lock;
//   - Options.Wrapper: start the child under a command such as prlimit;
//   - NewCert: certtest certificates valid around the real clock.
//
// Test binaries that use Options.Process, StartCommand or LockDB must call
// Main from TestMain: it runs the helper process when the binary is
// re-executed as one, and removes the built binary at the end.
package stacktest
