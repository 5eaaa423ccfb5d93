// Package component is saslcert's XEP-0114 (Jabber Component Protocol)
// connection to the XMPP server.
//
// It dials the server's component port, authenticates with the shared
// secret, and serves:
//
//   - XEP-0257 requests (urn:xmpp:saslcert:1) that the server delegates to
//     the component with XEP-0355 (mod_delegation), or that users address to
//     the component JID directly; they go to xep0257.Decode and
//     (*xep0257.Handler).Process;
//   - the server plugin's protocol (urn:x-saslcert:plugin:0,
//     docs/PLUGIN-PROTOCOL.md; its messages are package pluginproto's
//     types): SASL EXTERNAL lookups, answered by
//     (*sasl.Authorizer).Authorize, and session notices, kept in a Registry;
//     after every connect it asks each served domain for its session list,
//     and NotifyRevoked tells the plugin to close the sessions of a revoked
//     certificate;
//   - disco#info (with the nodes mod_delegation asks for) and XEP-0199 pings;
//   - with EnableEnrollment, the XEP-0050 ad-hoc commands "Request a
//     certificate" (a CSR, or the name of an uploaded self-signed
//     certificate, in; the issued chain out) and "Fetch my latest
//     certificate", decided by package enrollcmd and served by an
//     enroll.Service for the bare JID of the server-stamped from
//     (commands.go routes them; docs/ENROLLMENT.md);
//     RunRenewal renews enrolled certificates and tells their owners with a
//     <message/> (SendMessage).
//
// Handlers never block the stream: a request is decoded on the stream
// goroutine, processed on its own goroutine (at most Config.MaxInFlight at
// once; more get wait/resource-constraint at once) and answered from there.
// Every request gets exactly one answer, including every delegated IQ.
// Nothing a peer sends ends the stream (guard.go): a stanza with an
// address mellium cannot parse, one the mux cannot route, or one whose
// handler fails or panics gets a stanza error (IQ get and set) or is
// dropped; only a stream that is not well-formed XML, or a connection that
// fails, ends it.
//
// Wiring: package server builds the component with its handler, authorizer,
// life-cycle owner and jobs (server.New); New leaves the handler it is given
// alone. Wired by hand (the component's own tests):
//
//	mgr := lifecycle.New(db, log) // every writer's store
//	certs := &xep0257.Handler{Store: mgr, Policy: ..., Limits: ..., Now: now, Logger: log}
//	auth := &sasl.Authorizer{Store: db, Now: now}
//	comp, err := component.New(component.Config{
//		Addr:          "127.0.0.1:5347",
//		JID:           jid.MustParse("certs.example.org"),
//		Secret:        secret,
//		ServerDomains: []string{"example.org"},
//		Logger:        log,
//	}, certs, auth)
//	certs.Sessions = comp.Sessions()
//	mgr.Register(lifecycle.Effects{Changed: ..., Revoked: comp.NotifyRevoked})
//	comp.EnableEnrollment(svc)           // optional: an *enroll.Service
//	go comp.RunRenewal(ctx, 10*time.Minute)
//	err = comp.Run(ctx) // returns nil after ctx is cancelled and the stream is closed
package component
