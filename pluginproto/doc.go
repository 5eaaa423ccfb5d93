// Package pluginproto holds the wire format of the protocol between the
// server plugin (plugins/prosody/mod_saslcert.lua) and the saslcert component,
// urn:x-saslcert:plugin:0 (docs/PLUGIN-PROTOCOL.md): one Go type per element,
// each with TokenReader/WriteXML/MarshalXML to write it and UnmarshalXML to
// read it, and the MAC of the auth stamp.
//
// The types carry the protocol's values as the wire has them (JIDs and
// fingerprints are text): deciding whether a JID names an account of a served
// domain, or parsing a fingerprint, is the caller's job. Decoding checks the
// structure strictly: the element's name, required attributes, attributes
// given twice, closed value sets (event, exists, method, manage), numbers,
// base64, unexpected child elements or text, and the size limits below. Its
// errors are stanza.Error values of type modify and condition bad-request
// whose text says what is wrong, ready to send. Unknown attributes are
// ignored.
//
// The files in testdata/pluginproto hold one example of every message; the
// tests of this package and of the Prosody plugin (plugins/prosody) both read
// them.
//
// The package does no I/O and imports no other package of this module.
package pluginproto

// NS is the namespace of the protocol. Version 0: a breaking change gets a
// new namespace.
const NS = "urn:x-saslcert:plugin:0"

// NSSASL qualifies the SASL condition inside a refused lookup.
const NSSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// Limits applied when decoding.
const (
	// MaxLookupCert bounds the text of the <x509cert/> of a lookup (base64
	// and white space), in bytes.
	MaxLookupCert = 64 << 10
	// MaxAccounts bounds the <account/> children of an <accounts/> query or
	// answer (the plugin refuses larger queries with
	// modify/policy-violation).
	MaxAccounts = 1000
)
