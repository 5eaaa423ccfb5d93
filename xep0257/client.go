package xep0257

import (
	"context"
	"encoding/xml"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// The helpers below send one request and block until the reply arrives. A
// zero to sends the request without a 'to' attribute, as unmodified clients
// do (the server answers for the sender's own account). An error reply is
// returned as a stanza.Error (test with errors.As). The helpers that change
// something are named ...Cert because the payload types own the plain names.

// Fetch asks to for the account's active certificates.
func Fetch(ctx context.Context, s *xmpp.Session, to jid.JID) ([]Item, error) {
	return FetchIQ(ctx, s, stanza.IQ{To: to})
}

// FetchIQ is like Fetch but sends the request in iq (its type is set to get).
func FetchIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ) ([]Item, error) {
	iq.Type = stanza.GetIQ
	var res Items
	if err := s.UnmarshalIQ(ctx, iq.Wrap(Items{}.TokenReader()), &res); err != nil {
		return nil, err
	}
	return res.Items, nil
}

// AppendCert asks to to store the DER certificate der for the account under
// name; with noCertManagement, sessions that log in with it may not manage
// certificates.
func AppendCert(ctx context.Context, s *xmpp.Session, to jid.JID, name string, der []byte, noCertManagement bool) error {
	return AppendCertIQ(ctx, s, stanza.IQ{To: to}, Append{Name: name, Cert: der, NoCertManagement: noCertManagement})
}

// AppendCertIQ is like AppendCert but sends a in iq (its type is set to set).
func AppendCertIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ, a Append) error {
	return setIQ(ctx, s, iq, a.TokenReader())
}

// DisableCert asks to to disable the account's certificate called name: it
// can no longer log in; live sessions stay.
func DisableCert(ctx context.Context, s *xmpp.Session, to jid.JID, name string) error {
	return DisableCertIQ(ctx, s, stanza.IQ{To: to}, name)
}

// DisableCertIQ is like DisableCert but sends the request in iq (its type is
// set to set).
func DisableCertIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ, name string) error {
	return setIQ(ctx, s, iq, Disable{Name: name}.TokenReader())
}

// RevokeCert asks to to revoke the account's certificate called name: it can
// no longer log in and live sessions that logged in with it are closed.
func RevokeCert(ctx context.Context, s *xmpp.Session, to jid.JID, name string) error {
	return RevokeCertIQ(ctx, s, stanza.IQ{To: to}, name)
}

// RevokeCertIQ is like RevokeCert but sends the request in iq (its type is set
// to set).
func RevokeCertIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ, name string) error {
	return setIQ(ctx, s, iq, Revoke{Name: name}.TokenReader())
}

func setIQ(ctx context.Context, s *xmpp.Session, iq stanza.IQ, payload xml.TokenReader) error {
	iq.Type = stanza.SetIQ
	return s.UnmarshalIQ(ctx, iq.Wrap(payload), nil)
}
