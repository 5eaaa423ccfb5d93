// Package xep0257 implements XEP-0257: Client Certificate Management for SASL
// EXTERNAL (urn:xmpp:saslcert:1): the payloads, the request handler and
// client helpers.
package xep0257

import (
	"context"
	"encoding/xml"
	"log/slog"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// NS is the XEP-0257 namespace.
const NS = "urn:xmpp:saslcert:1"

// Request is a decoded XEP-0257 payload: *Items, *Append, *Disable or *Revoke.
type Request interface{ isRequest() }

// Decode reads one XEP-0257 payload whose start element has already been
// read, from r, and checks it against the IQ type (items: get; append,
// disable, revoke: set). It does no I/O besides reading r and never blocks on
// anything else, so it may run on the stream goroutine. Its errors are
// stanza.Error values (bad-request, feature-not-implemented, ...) ready to send.
func Decode(typ stanza.IQType, start xml.StartElement, r xml.TokenReader) (Request, error) {
	panic("TODO")
}

// Limits bound what one account may store.
type Limits struct {
	MaxCertSize   int // bytes of base64 in <x509cert>; default 16 KiB
	MaxPerAccount int // active certificates per account; default 10
	MaxNameLen    int // characters in <name>; default 64
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits { return Limits{MaxCertSize: 16 << 10, MaxPerAccount: 10, MaxNameLen: 64} }

// Sessions is what the handler needs to know about live client sessions; the
// component fills it from the server plugin's session notices.
type Sessions interface {
	// CertOf returns the fingerprint of the certificate the session with full
	// JID full logged in with, and false if it logged in otherwise (or is unknown).
	CertOf(full jid.JID) (storage.Fingerprint, bool)
	// Resources returns the resources of account's live sessions that logged
	// in with the certificate fp.
	Resources(account jid.JID, fp storage.Fingerprint) []string
}

// Handler serves XEP-0257 requests against a Store.
type Handler struct {
	Store    storage.Store
	Policy   sasl.Policy
	Limits   Limits
	Now      func() time.Time
	Sessions Sessions // nil: no session information (<users/> omitted, no-cert-management unenforceable)
	// Revoked, if set, is called after a revoke is committed and before the
	// reply is sent, so that live sessions can be closed.
	Revoked func(ctx context.Context, c *storage.Cert)
	Logger  *slog.Logger
}

// Process runs req on behalf of from (the full JID the server stamped on the
// request). It returns the result payload (nil for an empty result) or an
// error that is always a stanza.Error ready to send. It may block on the
// store: callers run it off the stream goroutine.
func (h *Handler) Process(ctx context.Context, from jid.JID, req Request) (xml.TokenReader, error) {
	panic("TODO")
}

// HandleIQ implements mux.IQHandler by decoding and processing inline. It
// always answers the IQ and returns an error only if writing fails.
func (h *Handler) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	panic("TODO")
}
