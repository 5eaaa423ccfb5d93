package sasl

import (
	msasl "mellium.im/sasl"
)

// External is the SASL EXTERNAL mechanism (RFC 4422 Appendix A) for
// mellium.im/sasl, which has none.
//
// Client side: the initial response is the identity (authzid) from the
// negotiator's Credentials, or empty (sent as "=") if there is none.
//
// Server side: the client's message is passed as the identity of
// n.Permissions(sasl.Credentials(...)); the permissions callback reads it
// with n.Credentials() and the TLS state with n.TLSState(), and decides.
var External msasl.Mechanism
