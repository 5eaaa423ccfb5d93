// Package xep0257 implements XEP-0257: Client Certificate Management for SASL
// EXTERNAL (urn:xmpp:saslcert:1): the payloads, the request handler and
// client helpers.
package xep0257

import (
	"context"
	"encoding/xml"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/disco/info"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// NS is the XEP-0257 namespace.
const NS = "urn:xmpp:saslcert:1"

var (
	_ mux.IQHandler    = (*Handler)(nil)
	_ info.FeatureIter = (*Handler)(nil)
)

// Limits bound what one account may store. Zero fields take their defaults.
type Limits struct {
	MaxCertSize   int // bytes of base64 in <x509cert>; default 16 KiB
	MaxPerAccount int // active certificates per account; default 10
	MaxNameLen    int // characters in <name>; default 64
	// MaxHistory is how many disabled and revoked certificates that have
	// not expired an account may keep when it appends one (expired ones are
	// deleted then); default 50. It bounds, with MaxPerAccount and
	// MaxCertSize, what one account can make the store keep.
	MaxHistory int
}

// DefaultExpiredGrace is Handler.ExpiredGrace's default.
const DefaultExpiredGrace = 24 * time.Hour

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{MaxCertSize: 16 << 10, MaxPerAccount: 10, MaxNameLen: 64, MaxHistory: 50}
}

// withDefaults returns l with its zero (or negative) fields set to the defaults.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxCertSize <= 0 {
		l.MaxCertSize = d.MaxCertSize
	}
	if l.MaxPerAccount <= 0 {
		l.MaxPerAccount = d.MaxPerAccount
	}
	if l.MaxNameLen <= 0 {
		l.MaxNameLen = d.MaxNameLen
	}
	if l.MaxHistory <= 0 {
		l.MaxHistory = d.MaxHistory
	}
	return l
}

// Sessions is what the handler needs to know about live client sessions to
// list them under <users/>; the component fills it from the server plugin's
// session notices. It never decides rights (notices arrive late: see Auth).
type Sessions interface {
	// Resources returns the resources of account's live sessions that logged
	// in with the certificate fp.
	Resources(account jid.JID, fp storage.Fingerprint) []string
}

// DefaultTimeout bounds the store work of one request in HandleIQ when
// Handler.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Handler serves XEP-0257 requests against a Store.
//
// The zero values of its optional fields are usable: Policy
// sasl.DefaultPolicy(), Limits DefaultLimits(), Now time.Now, Timeout
// DefaultTimeout, Logger discards.
type Handler struct {
	Store    storage.Store
	Policy   sasl.Policy
	Limits   Limits
	Now      func() time.Time
	Sessions Sessions // nil: no session information (<users/> omitted)
	// SessionAuth, if set, tells HandleIQ (which reads no stamp) how the
	// session of a full JID logged in. nil: HandleIQ knows nothing, so it
	// serves <items/> and refuses management (see MayManage).
	SessionAuth func(from jid.JID) Auth
	// Revoked, if set, is called after a revoke is committed and before the
	// reply is sent, so that live sessions can be closed.
	Revoked func(ctx context.Context, c *storage.Cert)
	// CheckAppend, if set, is asked about a certificate that
	// sasl.CheckUpload accepted for account, before it is stored (e.g. a
	// domain that accepts only CA-issued certificates). A *sasl.RefusalError
	// is sent as not-acceptable with its Detail, a stanza.Error as it is;
	// any other error is an internal one.
	CheckAppend func(ctx context.Context, account jid.JID, up *sasl.Upload) error
	Logger      *slog.Logger
	// AppendRate, if set, limits appends per account (the limit is taken
	// before the certificate is checked); over it the request gets
	// wait/resource-constraint.
	AppendRate *RateLimit
	// ExpiredGrace is how long after its notAfter a disabled or revoked
	// record is kept at least (it must outlast every clock skew allowed
	// anywhere); default 24h.
	ExpiredGrace time.Duration
	// Timeout bounds the store work of one request in HandleIQ (which has no
	// caller context). Process uses the caller's context only.
	Timeout time.Duration
	// Uploads, if set, is told the result of every <append/> Process
	// answers (metrics).
	Uploads UploadObserver
}

// Handle returns an option that registers h for every get and set IQ whose
// payload is in NS, so that a payload sent with the wrong IQ type gets
// bad-request and an unknown one feature-not-implemented (rather than mux's
// service-unavailable).
func Handle(h *Handler) mux.Option {
	return func(m *mux.ServeMux) {
		mux.IQ(stanza.GetIQ, xml.Name{Space: NS}, h)(m)
		mux.IQ(stanza.SetIQ, xml.Name{Space: NS}, h)(m)
	}
}

// ForFeatures implements info.FeatureIter. It advertises NS on the root node
// and on the XEP-0355 delegation nodes a server queries before it delegates
// NS to a component.
func (h *Handler) ForFeatures(node string, f func(info.Feature) error) error {
	switch node {
	case "", "urn:xmpp:delegation:2::" + NS, "urn:xmpp:delegation:2:bare:" + NS,
		"urn:xmpp:delegation:1::" + NS, "urn:xmpp:delegation:1:bare:" + NS:
		return f(info.Feature{Var: NS})
	}
	return nil
}

// Process runs req on behalf of from (the full JID the server stamped on the
// request), whose session logged in as auth says (append, disable and revoke
// need MayManage's consent; <items/> does not). It returns the result
// payload (nil for an empty result) or an error that is always a
// stanza.Error ready to send. It may block on the store: callers run it off
// the stream goroutine.
//
// The account is from's bare JID; requests built in code get the checks
// Decode applies.
func (h *Handler) Process(ctx context.Context, from jid.JID, auth Auth, req Request) (xml.TokenReader, error) {
	l := h.limits()
	checked, err := l.check(req)
	if err == nil {
		req = checked
	}
	op, name := describe(req)
	log := h.logger().With("op", op, "from", from.String())
	if name != "" {
		log = log.With("name", name)
	}
	var payload xml.TokenReader
	if err == nil {
		payload, err = h.process(ctx, from, auth, req, log)
	}
	_, isAppend := req.(*Append)
	if err == nil {
		log.DebugContext(ctx, "xep0257: done")
		if isAppend && h.Uploads != nil {
			h.Uploads.Upload(UploadAccepted, "")
		}
		return payload, nil
	}
	se, internal := toStanzaError(err, errContext{name: name, limits: l})
	if isAppend && h.Uploads != nil {
		h.Uploads.Upload(uploadOutcome(err, se, internal))
	}
	if internal {
		log.WarnContext(ctx, "xep0257: request failed", "condition", string(se.Condition), "type", string(se.Type), "err", err)
	} else {
		log.DebugContext(ctx, "xep0257: request refused", "condition", string(se.Condition), "text", se.Text[""], "err", err)
	}
	return nil, se
}

// process does the work of Process; its errors are mapped by toStanzaError.
func (h *Handler) process(ctx context.Context, from jid.JID, auth Auth, req Request, log *slog.Logger) (xml.TokenReader, error) {
	if from.Localpart() == "" {
		return nil, errNotAccount
	}
	account := from.Bare()
	if err := sasl.CanonicalJID(account); err != nil {
		// The server names this account differently (issue 10.5).
		return nil, fmt.Errorf("%w: %w", errAccountForms, err)
	}
	if _, ok := req.(*Items); ok {
		return h.items(ctx, account)
	}
	if err := h.mayManage(ctx, from, auth); err != nil {
		return nil, err
	}
	switch r := req.(type) {
	case *Append:
		_, err := h.append(ctx, from.String(), account, r, log)
		return nil, err
	case *Disable:
		c, err := h.Store.SetState(ctx, account.String(), r.Name, storage.StateDisabled, from.String())
		if err != nil {
			return nil, err
		}
		log.DebugContext(ctx, "xep0257: disabled", "fingerprint", c.Fingerprint.String())
		return nil, nil
	case *Revoke:
		// The key is revoked: renewals and other certificates of the
		// account for the same key go with the named one.
		revoked, err := h.Store.RevokeKey(ctx, account.String(), r.Name, from.String())
		if err != nil {
			return nil, err
		}
		for _, c := range revoked {
			log.DebugContext(ctx, "xep0257: revoked", "name", c.Name, "fingerprint", c.Fingerprint.String())
			if h.Revoked != nil {
				h.Revoked(ctx, c)
			}
		}
		return nil, nil
	}
	return nil, fmt.Errorf("xep0257: unknown request %T", req)
}

// AppendAs stores a certificate for account on behalf of actor, who holds
// the right to manage the account by other means than MayManage (the HTTP
// API's token): the checks of an XEP-0257 append from the account itself
// (name, size, AppendRate, sasl.CheckUpload, CheckAppend, the store's
// limits), audited as actor. It returns the stored record, or an error that
// is always the stanza.Error Process would send, with the same text.
func (h *Handler) AppendAs(ctx context.Context, account jid.JID, actor string, a *Append) (*storage.Cert, error) {
	l := h.limits()
	var c *storage.Cert
	checked, err := l.check(a)
	if err == nil {
		a = checked.(*Append)
		switch {
		case account.Localpart() == "" || account.Resourcepart() != "":
			err = errNotAccount
		default:
			if err = sasl.CanonicalJID(account); err != nil {
				err = fmt.Errorf("%w: %w", errAccountForms, err)
			}
		}
	}
	log := h.logger().With("op", "append", "account", account.String(), "actor", actor)
	if err == nil {
		c, err = h.append(ctx, actor, account, a, log)
	}
	if err == nil {
		return c, nil
	}
	name := ""
	if a != nil {
		name = a.Name
	}
	se, internal := toStanzaError(err, errContext{name: name, limits: l})
	if internal {
		log.WarnContext(ctx, "xep0257: append failed", "err", err)
	}
	return nil, se
}

func (h *Handler) append(ctx context.Context, actor string, account jid.JID, a *Append, log *slog.Logger) (*storage.Cert, error) {
	if h.AppendRate != nil {
		if ok, wait := h.AppendRate.Allow(account.String()); !ok {
			return nil, &rateError{wait: wait}
		}
	}
	c, err := h.store(ctx, account, a, actor)
	if err != nil {
		return nil, err
	}
	log.DebugContext(ctx, "xep0257: appended", "fingerprint", c.Fingerprint.String())
	return c, nil
}

func (h *Handler) items(ctx context.Context, account jid.JID) (xml.TokenReader, error) {
	certs, err := h.Store.ListCerts(ctx, account.String(), storage.StateActive)
	if err != nil {
		return nil, err
	}
	res := Items{XMLName: nameItems, Items: make([]Item, 0, len(certs))}
	for _, c := range certs {
		it := Item{Name: c.Name, Cert: c.DER, NoCertManagement: c.NoCertManagement}
		if h.Sessions != nil {
			if users := h.Sessions.Resources(account, c.Fingerprint); len(users) > 0 {
				it.Users = slices.Sorted(slices.Values(users))
			}
		}
		res.Items = append(res.Items, it)
	}
	return res.TokenReader(), nil
}

// HandleIQ implements mux.IQHandler by decoding and processing inline. It
// always answers a get or set IQ and returns an error only if writing fails.
// Results and errors addressed to it are ignored.
//
// Processing blocks the stream for as long as the store takes (up to
// Timeout); a component that must not stall runs Decode here and Process on
// another goroutine instead.
func (h *Handler) HandleIQ(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	if iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ {
		return nil
	}
	var s xml.StartElement
	if start != nil {
		s = *start
	}
	var payload xml.TokenReader
	req, err := h.limits().Decode(iq.Type, s, t)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout())
		defer cancel()
		var auth Auth
		if h.SessionAuth != nil {
			auth = h.SessionAuth(iq.From)
		}
		payload, err = h.Process(ctx, iq.From, auth, req)
	} else {
		h.logger().Debug("xep0257: bad request", "from", iq.From.String(), "payload", s.Name.Local, "err", err)
	}
	reply := iq.Result(payload)
	if err != nil {
		se, _ := toStanzaError(err, errContext{})
		reply = iq.Error(se)
	}
	_, err = xmlstream.Copy(t, reply)
	return err
}

// describe names the operation and the certificate name of req, for logs and
// error texts.
func describe(req Request) (op, name string) {
	switch r := req.(type) {
	case *Items:
		return "items", ""
	case *Append:
		if r != nil {
			return "append", r.Name
		}
		return "append", ""
	case *Disable:
		if r != nil {
			return "disable", r.Name
		}
		return "disable", ""
	case *Revoke:
		if r != nil {
			return "revoke", r.Name
		}
		return "revoke", ""
	}
	return "unknown", ""
}

func (h *Handler) limits() Limits { return h.Limits.withDefaults() }

func (h *Handler) now() time.Time {
	if h.Now != nil {
		return h.Now()
	}
	return time.Now()
}

func (h *Handler) policy() sasl.Policy {
	if h.Policy == (sasl.Policy{}) {
		return sasl.DefaultPolicy()
	}
	return h.Policy
}

func (h *Handler) timeout() time.Duration {
	if h.Timeout > 0 {
		return h.Timeout
	}
	return DefaultTimeout
}

var discard = slog.New(slog.DiscardHandler)

func (h *Handler) logger() *slog.Logger {
	if h.Logger != nil {
		return h.Logger
	}
	return discard
}
