// Package sasl decides who an X.509 client certificate speaks for.
//
// It parses id-on-xmppAddr subjectAltName entries itself (OID-checked,
// UTF8String only, RFC 7622 normalised; never mellium.im/xmpp/x509, which
// mistakes any otherName for a JID), decides whether a certificate may be
// stored for an account (CheckUpload), decides which JID a presented
// certificate authenticates as at login under the XEP-0178 authzid rules
// (Authorizer), and provides the SASL EXTERNAL mechanism for mellium.im/sasl
// (External) for Go clients and servers.
//
// Decisions this package takes where the specifications are silent:
//   - An xmppAddr must be a UTF8String holding a JID without NUL or control
//     characters that is stable under RFC 7622 normalisation and that an
//     XMPP server preparing JIDs with RFC 3920 stringprep (Prosody) reads as
//     the same JID (ParseJID: "straße" is refused, Prosody makes it
//     "strasse"); anything else is reported as a BadAddr and never used.
//     ParseJID is the one place JIDs from outside are checked this way
//     (xmppAddrs, authzids, stored owners, CLI flags, enrollment accounts);
//     ParseServerJID checks JIDs the server already prepared. A certificate with a BadAddr
//     is refused at upload even if another xmppAddr matches.
//   - At upload the xmppAddrs naming the account must agree on the resource:
//     all bare (no forced resource) or all one full JID (that resource is
//     forced). A bare and a full one, or two resources, are refused as
//     ambiguous.
//   - At login the certificate must still name its stored owner in a usable
//     xmppAddr; without an authzid it must name exactly one bare JID
//     (XEP-0178 §2); an authzid must be the owner's bare JID (RFC 6120
//     §6.3.8), in the server's domain.
//   - Disabled and revoked records give not-authorized; expiry gives
//     credentials-expired; a store failure gives temporary-auth-failure.
package sasl
