package component

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

// Namespaces of XEP-0355 (Namespace Delegation) and XEP-0297 (Stanza
// Forwarding). NSDelegation1 is XEP-0355's earlier namespace, which ejabberd
// 23.01's mod_delegation and mod_saslcert speak; the component serves both
// and answers each wrapper in its own namespace.
const (
	NSDelegation  = "urn:xmpp:delegation:2"
	NSDelegation1 = "urn:xmpp:delegation:1"
	NSForward     = "urn:xmpp:forward:0"
)

// handleDelegation serves an XEP-0257 request the server delegated to the
// component (XEP-0355):
//
//	<iq type='set' from='example.org' to='certs.example.org' id='X'>
//	  <delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>
//	    <iq xmlns='jabber:client' from='alice@example.org/res' id='Y' type='get|set'>PAYLOAD</iq>
//	  </forwarded></delegation></iq>
//
// The account is the bare inner from, which must belong to the outer sender's
// domain; the inner to must be absent, the account or the server. Every
// delegated IQ is answered (mod_delegation has no timeout): a problem with
// the wrapper gets an outer error, anything about the request itself an inner
// error inside an outer result. The answer's wrapper has the request's
// namespace (:1 or :2); under :1 the inner answer also carries from = the
// inner request's to, which ejabberd's mod_delegation requires to match.
func (l *link) handleDelegation(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	ns := start.Name.Space
	server, ok := c.served(iq.From)
	if !ok {
		c.log.Warn("refused a delegation wrapper from a sender that is not a served domain", "from", iq.From.String())
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "only a served server domain may delegate requests")))
	}
	inner, err := unwrapDelegation(t)
	var je *innerJIDError
	if errors.As(err, &je) {
		// Prosody accepted the address but mellium's parser does not (e.g. a
		// resource with U+1100): a precise error for the client, with the
		// raw id (the plugin readdresses it).
		c.log.Info("refused a delegated request whose address is not a valid JID", "from", rawAttr(je.start, "from"), "err", je.err)
		se := stanzaErr(stanza.Modify, stanza.JIDMalformed, "your address is not a valid JID here")
		return send(t, c.resultIQ(iq, wrapForwarded(ns, xmlstream.Wrap(se.TokenReader(), xml.StartElement{
			Name: xml.Name{Space: stanza.NSClient, Local: "iq"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "type"}, Value: string(stanza.ErrorIQ)},
				{Name: xml.Name{Local: "id"}, Value: rawAttr(je.start, "id")},
			},
		}))))
	}
	if err != nil {
		c.log.Warn("malformed delegation wrapper", "from", iq.From.String(), "err", err)
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Modify, stanza.BadRequest, err.Error())))
	}
	d := delegated{c: c, outer: iq, inner: inner, ns: ns}
	if se, ok := checkDelegated(server, inner); !ok {
		c.log.Info("refused a delegated request", "from", inner.From.String(), "to", inner.To.String(), "reason", se.Error())
		return send(t, d.fail(se))
	}
	payload, err := firstChild(t)
	if err != nil {
		return send(t, d.fail(stanzaErr(stanza.Modify, stanza.BadRequest, "the IQ has no payload")))
	}
	if payload.Name.Space != xep0257.NS {
		return send(t, d.fail(stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "")))
	}
	req, se := c.safeDecode(inner.Type, payload, t)
	if se != nil {
		return send(t, d.fail(*se))
	}
	// The stamp is a child of the inner IQ (the client's request): the
	// plugin stamped it before it or mod_delegation wrapped the request.
	auth := c.requestAuth(t, inner.From, inner.ID)
	err = l.dispatch(func(ctx context.Context) xml.TokenReader {
		res, err := c.certs.Process(ctx, inner.From, auth, req)
		if err != nil {
			return d.fail(c.asStanzaError(err, "processing a delegated request"))
		}
		return d.ok(res)
	}, func() xml.TokenReader { return d.fail(internalError()) })
	if err != nil {
		return send(t, d.fail(refusal(err)))
	}
	return nil
}

// delegated builds the answers to one delegated request.
type delegated struct {
	c     *Component
	outer stanza.IQ
	inner stanza.IQ
	ns    string // the wrapper's namespace (NSDelegation or NSDelegation1)
}

// ok answers with an inner result carrying payload (nil for an empty one).
func (d delegated) ok(payload xml.TokenReader) xml.TokenReader {
	return d.wrap(stanza.ResultIQ, payload)
}

// fail answers with an inner error.
func (d delegated) fail(se stanza.Error) xml.TokenReader {
	return d.wrap(stanza.ErrorIQ, se.TokenReader())
}

// wrap puts the inner answer (to = the inner from, no from: the server
// stamps the account, and clients drop answers from anyone else) into an
// outer result with exactly one child per level.
func (d delegated) wrap(typ stanza.IQType, payload xml.TokenReader) xml.TokenReader {
	inner := stanza.IQ{
		XMLName: xml.Name{Space: stanza.NSClient, Local: "iq"},
		ID:      d.inner.ID,
		To:      d.inner.From,
		Type:    typ,
	}
	if d.ns == NSDelegation1 {
		inner.From = d.inner.To
	}
	return d.c.resultIQ(d.outer, wrapForwarded(d.ns, inner.Wrap(payload)))
}

// wrapForwarded puts an inner IQ into <delegation xmlns=ns><forwarded/></delegation>.
func wrapForwarded(ns string, inner xml.TokenReader) xml.TokenReader {
	return xmlstream.Wrap(
		xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Space: NSForward, Local: "forwarded"}}),
		xml.StartElement{Name: xml.Name{Space: ns, Local: "delegation"}},
	)
}

// innerJIDError is unwrapDelegation's error for a forwarded IQ of type get
// or set, with an id and a from, whose to or from mellium cannot parse.
type innerJIDError struct {
	start xml.StartElement // the forwarded IQ's start element
	err   error
}

func (e *innerJIDError) Error() string { return "forwarded IQ: " + e.err.Error() }
func (e *innerJIDError) Unwrap() error { return e.err }

// unwrapDelegation reads the content of <delegation/> up to and including the
// start of the forwarded IQ, which it returns. Errors describe what is wrong
// with the wrapper.
func unwrapDelegation(r xml.TokenReader) (stanza.IQ, error) {
	fwd, err := firstChild(r)
	if err != nil {
		return stanza.IQ{}, errors.New("<delegation/> has no <forwarded/> child")
	}
	if fwd.Name.Space != NSForward || fwd.Name.Local != "forwarded" {
		return stanza.IQ{}, fmt.Errorf("expected <forwarded xmlns='%s'/> in <delegation/>, got <%s xmlns='%s'/>", NSForward, fwd.Name.Local, fwd.Name.Space)
	}
	for {
		start, err := firstChild(r)
		if err != nil {
			return stanza.IQ{}, fmt.Errorf("<forwarded/> has no <iq xmlns='%s'/>", stanza.NSClient)
		}
		if start.Name.Local != "iq" || start.Name.Space != stanza.NSClient {
			// E.g. an XEP-0203 <delay/>.
			if err := xmlstream.Skip(r); err != nil {
				return stanza.IQ{}, fmt.Errorf("reading <forwarded/>: %w", err)
			}
			continue
		}
		iq, err := stanza.NewIQ(start)
		typ := rawAttr(start, "type")
		switch {
		case err != nil && rawAttr(start, "id") != "" && rawAttr(start, "from") != "" && (typ == string(stanza.GetIQ) || typ == string(stanza.SetIQ)):
			return stanza.IQ{}, &innerJIDError{start: start, err: err}
		case err != nil:
			return stanza.IQ{}, fmt.Errorf("forwarded IQ: %w", err)
		case iq.ID == "":
			return stanza.IQ{}, errors.New("the forwarded IQ has no id")
		case iq.From.Equal(jid.JID{}):
			return stanza.IQ{}, errors.New("the forwarded IQ has no from")
		case iq.Type != stanza.GetIQ && iq.Type != stanza.SetIQ:
			return stanza.IQ{}, fmt.Errorf("the forwarded IQ has type %q, want get or set", iq.Type)
		}
		return iq, nil
	}
}

// checkDelegated decides whether the inner request may be served for the
// server domain that delegated it.
func checkDelegated(server jid.JID, inner stanza.IQ) (stanza.Error, bool) {
	if inner.From.Localpart() == "" || inner.From.Domainpart() != server.Domainpart() {
		return stanzaErr(stanza.Auth, stanza.Forbidden, "requests must come from an account of "+server.Domainpart()), false
	}
	account := inner.From.Bare()
	if to := inner.To; !to.Equal(jid.JID{}) && !to.Equal(account) && !to.Equal(server) {
		return stanzaErr(stanza.Auth, stanza.Forbidden, "you may only manage your own certificates"), false
	}
	return stanza.Error{}, true
}

// firstChild returns the next child element's start, skipping character data
// and comments; it fails at the end of the enclosing element or the input.
func firstChild(r xml.TokenReader) (xml.StartElement, error) {
	for {
		tok, err := r.Token()
		switch tok := tok.(type) {
		case xml.StartElement:
			return tok.Copy(), nil
		case xml.EndElement:
			return xml.StartElement{}, io.ErrUnexpectedEOF
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return xml.StartElement{}, err
		}
	}
}

// handleDirect serves an XEP-0257 request addressed to the component itself
// by a user of a served domain.
func (l *link) handleDirect(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	if iq.To.Localpart() != "" || iq.To.Resourcepart() != "" {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "")))
	}
	if _, ok := c.domains[iq.From.Domainpart()]; !ok || iq.From.Localpart() == "" {
		c.log.Info("refused a certificate request from outside the served domains", "from", iq.From.String())
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "only accounts of the served domains may manage certificates here")))
	}
	req, se := c.safeDecode(iq.Type, *start, t)
	if se != nil {
		return send(t, c.errorIQ(iq, *se))
	}
	auth := c.requestAuth(t, iq.From, iq.ID)
	err := l.dispatch(func(ctx context.Context) xml.TokenReader {
		res, err := c.certs.Process(ctx, iq.From, auth, req)
		if err != nil {
			return c.errorIQ(iq, c.asStanzaError(err, "processing a request"))
		}
		return c.resultIQ(iq, res)
	}, func() xml.TokenReader { return c.errorIQ(iq, internalError()) })
	if err != nil {
		return send(t, c.errorIQ(iq, refusal(err)))
	}
	return nil
}

// safeDecode runs the XEP-0257 decoder, turning its errors (and, should it
// have a bug, its panics) into stanza errors.
func (c *Component) safeDecode(typ stanza.IQType, start xml.StartElement, r xml.TokenReader) (req xep0257.Request, se *stanza.Error) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("panic while decoding a request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			e := internalError()
			req, se = nil, &e
		}
	}()
	req, err := c.decode(typ, start, r)
	if err != nil {
		e := c.asStanzaError(err, "decoding a request")
		return nil, &e
	}
	return req, nil
}

// asStanzaError returns err if it is a stanza.Error, else logs it and returns
// a generic internal-server-error (internal detail is not sent).
func (c *Component) asStanzaError(err error, doing string) stanza.Error {
	var se stanza.Error
	if errors.As(err, &se) {
		return se
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		c.log.Warn("request timed out", "doing", doing, "err", err)
		return stanzaErr(stanza.Wait, stanza.ResourceConstraint, "the request took too long; try again")
	}
	c.log.Error("unexpected error", "doing", doing, "err", err)
	return internalError()
}

func internalError() stanza.Error {
	return stanzaErr(stanza.Wait, stanza.InternalServerError, "")
}

// handleDelegationMessage logs the server's announcement of the namespaces it
// delegates to the component.
func (l *link) handleDelegationMessage(msg stanza.Message, t xmlstream.TokenReadEncoder) error {
	if _, ok := l.c.served(msg.From); !ok {
		l.c.log.Debug("ignoring a delegation message from an unserved sender", "from", msg.From.String())
		return nil
	}
	var namespaces []string
	for {
		tok, err := t.Token()
		if err != nil {
			break
		}
		if s, ok := tok.(xml.StartElement); ok && s.Name.Local == "delegated" && (s.Name.Space == NSDelegation || s.Name.Space == NSDelegation1) {
			for _, a := range s.Attr {
				if a.Name.Local == "namespace" {
					namespaces = append(namespaces, a.Value)
				}
			}
		}
	}
	l.c.log.Debug("the server delegates namespaces to the component", "from", msg.From.String(), "namespaces", namespaces)
	return nil
}
