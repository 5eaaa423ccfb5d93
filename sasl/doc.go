// Package sasl decides who an X.509 client certificate speaks for.
//
// It parses id-on-xmppAddr subjectAltName entries itself (OID-checked,
// UTF8String only, RFC 7622 normalised; never mellium.im/xmpp/x509, which
// mistakes any otherName for a JID), decides whether a certificate may be
// stored for an account (CheckUpload), decides which JID a presented
// certificate authenticates as at login under the XEP-0178 authzid rules
// (Authorizer), and provides the SASL EXTERNAL mechanism for mellium.im/sasl
// (External) for Go clients and servers.
package sasl
