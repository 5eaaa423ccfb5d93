// Package modclientcerts reads the certificates that Prosody's community
// module mod_client_certs (Debian's prosody-modules) keeps, so that a server
// leaving it can import them into saslcert (`saslcert import
// mod_client_certs`) and lose nothing silently.
//
// The module keeps one file per user through Prosody's util.datamanager:
// DATA/<host>/client_certs/<user>.dat under Prosody's data directory, where
// host and user are %-encoded as datamanager does it (every byte that is not
// an ASCII letter or digit becomes %xx; PathEncode, PathDecode). Each file is
// Lua source that util.serialization wrote, "return { ... };\n": a table
// keyed by the certificate's name whose values are tables with the fields
// name, x509cert (the base64 DER as uploaded), pem (the certificate as LuaSec
// re-encoded it), digest (its SHA-1, hex) and no_cert_management (a
// boolean).
//
// The reader is strict and bounded: it accepts only the Lua that
// util.serialization writes (a table constructor of strings, booleans,
// numbers and tables, no expressions, no comments, no function calls), at
// most MaxFileSize bytes and MaxDepth nested tables, and it never runs
// anything. A file it cannot read gives a *SyntaxError naming the line and
// column; an entry it can read but not use (no certificate, two different
// certificates in x509cert and pem, a digest that does not match, an unknown
// field) is returned with Entry.Err set, so that the caller reports it and
// goes on with the others.
package modclientcerts
