package sasl

import (
	"context"

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
// EXTERNAL has exactly one message from the client and no challenge: a
// second step is an error (sasl.ErrTooManySteps).
var External = msasl.Mechanism{
	Name:  "EXTERNAL",
	Start: externalStart,
	Next:  externalNext,
}

func externalStart(n *msasl.Negotiator) (bool, []byte, any, error) {
	if n.State()&msasl.Receiving != 0 {
		// A server negotiator never starts: the client speaks first.
		return false, nil, nil, msasl.ErrInvalidState
	}
	_, _, identity := n.Credentials()
	return false, identity, nil, nil
}

func externalNext(n *msasl.Negotiator, msg []byte, _ any) (bool, []byte, any, error) {
	if n.State()&msasl.Receiving == 0 || n.State()&msasl.StepMask != msasl.AuthTextSent {
		// The client never gets a challenge; the server takes one message.
		return false, nil, nil, msasl.ErrTooManySteps
	}
	identity := msg
	ok := n.Permissions(msasl.Credentials(func() (user, pass, id []byte) { return nil, nil, identity }))
	if !ok {
		return false, nil, nil, msasl.ErrAuthn
	}
	return false, nil, nil, nil
}

// Permissions returns a permissions callback for a mellium.im/sasl server
// negotiator (for example xmpp.SASLServer(a.Permissions(...), External)) on
// a connection to domain. It authorizes the first TLS peer certificate with
// the authzid the client sent, and calls result (if not nil) with the
// decision before it returns; result is where a server keeps the Grant (the
// JID and forced resource to bind) for that connection. A connection without
// TLS or without a client certificate is refused with malformed-request.
//
// The callback uses ctx for the store lookup; build one per connection.
func (a *Authorizer) Permissions(ctx context.Context, domain string, result func(Grant, error)) func(*msasl.Negotiator) bool {
	return func(n *msasl.Negotiator) bool {
		_, _, identity := n.Credentials()
		req := Request{Authzid: string(identity), Domain: domain}
		if st := n.TLSState(); st != nil && len(st.PeerCertificates) > 0 {
			req.DER = st.PeerCertificates[0].Raw
		}
		g, err := a.Authorize(ctx, req)
		if result != nil {
			result(g, err)
		}
		return err == nil
	}
}
