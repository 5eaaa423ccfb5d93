package component

import (
	"context"
	"encoding/xml"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// NSPlugin is the namespace of the protocol between the server plugin and the
// component (docs/PLUGIN-PROTOCOL.md); its messages are the types of package
// pluginproto.
const NSPlugin = pluginproto.NS

// handlePlugin serves the plugin's IQs: lookup (get) and session notices
// (set). They are accepted only from a served domain's bare JID; anything
// else gets auth/forbidden and changes nothing.
func (l *link) handlePlugin(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	server, ok := c.served(iq.From)
	if !ok {
		c.log.Warn("refused a plugin request from a sender that is not a served domain", "from", iq.From.String(), "element", start.Name.Local)
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "only a served server domain may use this protocol")))
	}
	switch {
	case start.Name.Local == "lookup" && iq.Type == stanza.GetIQ:
		return l.handleLookup(server, iq, t, start)
	case start.Name.Local == "session" && iq.Type == stanza.SetIQ:
		return send(t, l.handleSessionNotice(server, iq, t, start))
	case start.Name.Local == "account-deleted" && iq.Type == stanza.SetIQ:
		return l.handleAccountDeleted(server, iq, t, start)
	case start.Name.Local == "account-created" && iq.Type == stanza.SetIQ:
		return l.handleAccountCreated(server, iq, t, start)
	case start.Name.Local == "lookup" || start.Name.Local == "session" || start.Name.Local == "account-deleted" ||
		start.Name.Local == "account-created":
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "wrong IQ type for <"+start.Name.Local+"/>")))
	}
	return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.FeatureNotImplemented, "")))
}

// badPayload is the error answering a plugin payload (element el) that did
// not decode: pluginproto's own error, or modify/bad-request.
func badPayload(err error, el string) stanza.Error {
	var se stanza.Error
	if errors.As(err, &se) {
		return se
	}
	return stanzaErr(stanza.Modify, stanza.BadRequest, "unreadable <"+el+"/>")
}

// handleLookup decodes a lookup on the stream goroutine and decides it on a
// worker.
func (l *link) handleLookup(server jid.JID, iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	began := time.Now()
	var v pluginproto.Lookup
	if err := decodeElement(*start, t, &v); err != nil {
		se := badPayload(err, "lookup")
		c.log.Warn("malformed lookup from the plugin", "from", iq.From.String(), "problem", se.Text[""])
		c.observeLookup(LookupMalformed, began)
		return send(t, c.errorIQ(iq, se))
	}
	req := sasl.Request{Authzid: v.Authzid, Domain: server.Domainpart(), DER: v.Cert}
	if v.Cert == nil {
		fp, err := storage.ParseFingerprint(v.Fingerprint)
		if err != nil {
			const text = "fingerprint is not sha256: and 64 hex digits"
			c.log.Warn("malformed lookup from the plugin", "from", iq.From.String(), "problem", text)
			c.observeLookup(LookupMalformed, began)
			return send(t, c.errorIQ(iq, stanzaErr(stanza.Modify, stanza.BadRequest, text)))
		}
		req.Fingerprint = fp
	}
	err := l.dispatch(func(ctx context.Context) xml.TokenReader {
		g, err := c.auth.Authorize(ctx, req)
		if err == nil && c.beingDeleted(g.JID.Bare().String()) {
			err = &sasl.Failure{Condition: sasl.NotAuthorized, Reason: "the account " + g.JID.Bare().String() + " was deleted"}
		}
		if errors.Is(err, sasl.ErrCertificateNeeded) {
			c.observeLookup(LookupCertificateNeeded, began)
			return c.errorIQ(iq, stanzaErr(stanza.Modify, stanza.ItemNotFound, "this certificate is not stored; send it whole"))
		}
		if err != nil {
			answer, outcome := c.lookupRefused(iq, err)
			c.observeLookup(outcome, began)
			return answer
		}
		c.log.Debug("login allowed", "jid", g.JID.String(), "fingerprint", g.Fingerprint.String())
		c.observeLookup(LookupGranted, began)
		return c.resultIQ(iq, lookupResult(g, c.maxAge(g)))
	}, func() xml.TokenReader {
		c.observeLookup(LookupUndecided, began)
		return c.lookupTemporary(iq, stanza.InternalServerError)
	})
	if err != nil {
		c.observeLookup(LookupOverloaded, began)
		return send(t, c.lookupTemporary(iq, stanza.ResourceConstraint))
	}
	return nil
}

// cacheSeconds is d in whole seconds, rounded down; 0 for anything shorter
// than a second.
func cacheSeconds(d time.Duration) int64 {
	return int64(d / time.Second)
}

// maxAge is how many seconds the plugin may reuse grant g (0: not at all):
// Config.CacheTTL for a grant of a stored certificate, but never beyond the
// grant's Until; never for one that also depends on a CA's revocation
// state (FromCA), which no store change would invalidate.
func (c *Component) maxAge(g sasl.Grant) int64 {
	if !g.Stored || g.FromCA || c.cfg.CacheTTL <= 0 {
		return 0
	}
	return cacheSeconds(min(c.cfg.CacheTTL, g.Until.Sub(c.cfg.Now())))
}

// lookupResult is the payload of an allowed lookup; maxAge > 0 adds the
// max-age attribute.
func lookupResult(g sasl.Grant, maxAge int64) xml.TokenReader {
	return pluginproto.LookupResult{
		JID:              g.JID.Bare().String(),
		Resource:         g.Resource,
		Fingerprint:      g.Fingerprint.String(),
		NoCertManagement: g.NoCertManagement,
		MaxAge:           maxAge,
	}.TokenReader()
}

// saslTexts are the texts sent with each refusal. The authorizer's Reason is
// only logged: it may describe stored data.
var saslTexts = map[sasl.Condition]string{
	sasl.NotAuthorized:      "this certificate may not log in",
	sasl.InvalidAuthzid:     "the authorization identity does not match the certificate",
	sasl.CredentialsExpired: "the certificate has expired or is not yet valid",
	sasl.AccountDisabled:    "the certificate has been disabled or revoked",
	sasl.MalformedRequest:   "the certificate could not be read",
}

// lookupRefused answers a lookup the authorizer refused: type auth,
// <not-authorized/> and the SASL condition in the SASL namespace. A failure
// that is not a definite refusal gets the temporary answer. outcome is the
// condition sent, or LookupUndecided (Observer.Lookup).
func (c *Component) lookupRefused(iq stanza.IQ, err error) (answer xml.TokenReader, outcome string) {
	var f *sasl.Failure
	if !errors.As(err, &f) || f.Condition == sasl.TemporaryAuthFailure {
		c.log.Warn("login lookup could not be decided", "err", err)
		return c.lookupTemporary(iq, stanza.InternalServerError), LookupUndecided
	}
	cond := f.Condition
	text, ok := saslTexts[cond]
	if !ok {
		// Fail closed on a condition this code does not know.
		c.log.Warn("unknown SASL condition from the authorizer; answering not-authorized", "condition", string(cond))
		cond, text = sasl.NotAuthorized, saslTexts[sasl.NotAuthorized]
	}
	c.log.Info("login refused", "condition", string(cond), "reason", f.Reason)
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: stanza.ErrorIQ}.Wrap(
		pluginproto.Refused(string(cond), text).TokenReader()), string(cond)
}

// lookupTemporary answers a lookup the component could not decide: type wait,
// cond (internal-server-error or resource-constraint) and
// <temporary-auth-failure/> in the SASL namespace.
func (c *Component) lookupTemporary(iq stanza.IQ, cond stanza.Condition) xml.TokenReader {
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: stanza.ErrorIQ}.Wrap(
		pluginproto.Undecided(cond).TokenReader())
}

// handleSessionNotice applies a session notice (cheap, in memory, so on the
// stream goroutine, in stream order) and returns the answer.
func (l *link) handleSessionNotice(server jid.JID, iq stanza.IQ, t xml.TokenReader, start *xml.StartElement) xml.TokenReader {
	if se, ok := l.applySessionNotice(server, iq.From, *start, t); !ok {
		return l.c.errorIQ(iq, se)
	}
	return l.c.resultIQ(iq, nil)
}

// applySessionNotice reads one <session event jid fingerprint/> (whose
// start has been read) from server's plugin and applies it to the registry,
// or returns the error that refuses it.
func (l *link) applySessionNotice(server, from jid.JID, start xml.StartElement, r xml.TokenReader) (stanza.Error, bool) {
	c := l.c
	bad := func(text string) (stanza.Error, bool) {
		c.log.Warn("malformed session notice from the plugin", "from", from.String(), "problem", text)
		return stanzaErr(stanza.Modify, stanza.BadRequest, text), false
	}
	var n pluginproto.Session
	if err := decodeElement(start, r, &n); err != nil {
		return bad(badPayload(err, "session").Text[""])
	}
	full, err := sasl.ParseServerJID(n.JID)
	if errors.Is(err, sasl.ErrJIDForms) {
		return bad("jid is not its own RFC 7622 form: " + err.Error())
	}
	if err != nil || full.Localpart() == "" || full.Resourcepart() == "" {
		return bad("jid must be a full JID")
	}
	if full.Domainpart() != server.Domainpart() {
		return stanzaErr(stanza.Auth, stanza.Forbidden, "the session is not on "+server.Domainpart()), false
	}
	switch n.Event {
	case pluginproto.EventBound:
		fp, err := storage.ParseFingerprint(n.Fingerprint)
		if err != nil {
			return bad("fingerprint must be sha256:<64 hex digits>")
		}
		c.reg.Bound(full, fp)
		c.checkBound(full, fp, c.order.bound())
	case pluginproto.EventClosed:
		c.reg.Closed(full)
	default:
		return bad("event must be bound or closed")
	}
	c.log.Debug("session notice", "event", string(n.Event), "jid", full.String())
	return stanza.Error{}, true
}

// handleNotices applies a batch of session notices the plugin sent as a
// message (pluginproto.Notices, no answer), in order, on the stream
// goroutine; a bad notice is logged and skipped. Messages from anyone but a
// served domain are ignored.
func (l *link) handleNotices(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	server, ok := l.c.served(msg.From)
	if !ok {
		l.c.log.Warn("ignored session notices from a sender that is not a served domain", "from", msg.From.String())
		return nil
	}
	for {
		tok, err := t.Token()
		if err != nil {
			return nil
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Space == NSPlugin && s.Name.Local == "session" {
			l.applySessionNotice(server, msg.From, s, t)
		}
	}
}

// refreshSessions asks server for its current certificate sessions and
// replaces what the registry knows about that domain. The answer is applied
// on the stream goroutine, so notices that follow it in the stream are
// applied after it.
func (l *link) refreshSessions(ctx context.Context, server jid.JID) (int, error) {
	payload, handle, n := l.sessionsQuery(server)
	err := l.request(ctx, server, stanza.GetIQ, payload, handle)
	return *n, err
}

// sessionsQuery builds the <sessions/> query to server and the handler of
// its answer, which replaces the registry's sessions of that domain and sets
// *n to their number. The plugin empties its caches when it reads the query.
func (l *link) sessionsQuery(server jid.JID) (xml.TokenReader, func(xml.StartElement, xml.TokenReader) error, *int) {
	n := new(int)
	// lookup='fingerprint': lookups may name the certificate by fingerprint.
	payload := pluginproto.SessionsQuery{Lookup: pluginproto.LookupByFingerprint, CacheTTL: cacheSeconds(l.c.cfg.CacheTTL)}.TokenReader()
	return payload, func(start xml.StartElement, r xml.TokenReader) error {
		var v pluginproto.SessionList
		if start.Name.Local != "" {
			if err := decodeElement(start, r, &v); err != nil {
				return errors.New("component: unreadable answer to <sessions/>: " + err.Error())
			}
		}
		list := make([]CertSession, 0, len(v.Sessions))
		for _, s := range v.Sessions {
			full, err := sasl.ParseServerJID(s.JID)
			fp, ferr := storage.ParseFingerprint(s.Fingerprint)
			if err != nil || ferr != nil || full.Localpart() == "" || full.Resourcepart() == "" || full.Domainpart() != server.Domainpart() {
				l.c.log.Warn("ignoring a malformed entry in the plugin's session list", "jid", s.JID, "fingerprint", s.Fingerprint)
				continue
			}
			list = append(list, CertSession{JID: full, Fingerprint: fp})
		}
		l.c.reg.Replace(server.Domainpart(), list)
		*n = len(list)
		return nil
	}, n
}

// afterConnect refreshes the session registry from every served domain, then
// closes sessions whose certificate was revoked while the component could not
// tell the plugin.
func (l *link) afterConnect() {
	c := l.c
	servers := make([]jid.JID, 0, len(c.domains))
	for _, d := range c.domains {
		servers = append(servers, d)
	}
	slices.SortFunc(servers, func(a, b jid.JID) int { return strings.Compare(a.String(), b.String()) })
	for _, server := range servers {
		ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
		n, err := l.refreshSessions(ctx, server)
		cancel()
		var se stanza.Error
		switch {
		case err == nil:
			c.log.Debug("session list refreshed", "domain", server.String(), "sessions", n)
		case errors.Is(err, errLinkClosed):
			return
		case errors.As(err, &se):
			c.log.Warn("the server did not give its session list; is the saslcert plugin loaded?", "domain", server.String(), "err", err)
		default:
			c.log.Warn("could not get the session list", "domain", server.String(), "err", err)
		}
	}
	l.sweepRevoked(servers)
	l.reconcileLoop(servers)
}

// sweepRevoked notifies the plugin of live sessions whose certificate is
// revoked in the store.
func (l *link) sweepRevoked(servers []jid.JID) {
	c := l.c
	if c.store == nil {
		return
	}
	seen := make(map[storage.Fingerprint]bool)
	for _, server := range servers {
		for _, s := range c.reg.Snapshot(server.Domainpart()) {
			select {
			case <-l.done:
				return
			default:
			}
			if seen[s.Fingerprint] {
				continue
			}
			seen[s.Fingerprint] = true
			ctx, cancel := context.WithTimeout(context.Background(), c.cfg.RequestTimeout)
			cert, err := c.store.FindCertByFingerprint(ctx, s.Fingerprint)
			if err == nil && cert.State == storage.StateRevoked {
				c.log.Info("a live session uses a revoked certificate; telling the plugin", "jid", s.JID.String(), "fingerprint", s.Fingerprint.String())
				c.NotifyRevoked(ctx, cert)
			} else if err != nil && !errors.Is(err, storage.ErrNotFound) {
				c.log.Warn("revocation sweep: store lookup failed", "fingerprint", s.Fingerprint.String(), "err", err)
			}
			cancel()
		}
	}
}

// NotifyRevoked tells the server plugin that cert was revoked, so that it
// closes every session that logged in with it, and waits for its answer (at
// most Config.RequestTimeout). It is meant for xep0257.Handler.Revoked: it is
// called off the stream goroutine after the revoke is committed and before
// the request is answered. Failures are logged; if the component is not
// connected, the sessions are found and closed after the next connect.
func (c *Component) NotifyRevoked(ctx context.Context, cert *storage.Cert) {
	if cert == nil {
		return
	}
	account, err := jid.Parse(cert.Account)
	if err != nil || account.Localpart() == "" {
		c.log.Warn("revocation of a certificate with a malformed account", "account", cert.Account)
		return
	}
	account = account.Bare()
	server, ok := c.domains[account.Domainpart()]
	if !ok {
		c.log.Warn("revocation for an account of a domain this component does not serve", "account", account.String())
		return
	}
	l := c.current()
	if l == nil {
		c.log.Warn("not connected: live sessions of a revoked certificate will be closed after the next connect",
			"account", account.String(), "fingerprint", cert.Fingerprint.String())
		return
	}
	// Its own deadline, as for <changed/>: a revoke committed just before its
	// request's deadline must still close the certificate's sessions.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.RequestTimeout)
	defer cancel()
	payload := pluginproto.Revoked{JID: account.String(), Fingerprint: cert.Fingerprint.String()}.TokenReader()
	closed := l.closedAnswer()
	err = l.request(ctx, server, stanza.SetIQ, payload, closed.read)
	if err != nil {
		c.log.Warn("could not tell the server plugin about a revocation; live sessions may stay open",
			"account", account.String(), "fingerprint", cert.Fingerprint.String(), "err", err)
		return
	}
	c.reg.Forget(account, cert.Fingerprint)
	c.log.Info("revocation sent to the server plugin", "account", account.String(), "fingerprint", cert.Fingerprint.String(), "closed", closed.Count)
}

// closedAnswer reads the plugin's answer to <revoked/> or <disabled/>
// (pluginproto.Closed). The count only informs: a result is a result, so an
// unreadable answer is logged and counts as 0 sessions closed.
func (l *link) closedAnswer() *closedReader { return &closedReader{log: l.c.log} }

type closedReader struct {
	pluginproto.Closed
	log *slog.Logger
}

func (c *closedReader) read(start xml.StartElement, r xml.TokenReader) error {
	if start.Name.Local == "" {
		return nil
	}
	if err := decodeElement(start, r, &c.Closed); err != nil {
		c.log.Warn("unreadable answer from the server plugin", "element", start.Name.Local, "err", err)
		c.Closed = pluginproto.Closed{}
	}
	return nil
}
