package component

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// XEP-0050 (Ad-Hoc Commands) for enrollment. Users address the component
// JID directly:
//
//	<iq type='set' to='certs.example.org'>
//	  <command xmlns='http://jabber.org/protocol/commands' node='urn:x-saslcert:enroll' action='execute'/>
//	</iq>
//
// "Request a certificate" (NodeEnroll) answers with a form (status
// executing, a session id, action complete); the client submits it with
// action complete and gets status completed with a result form that holds
// the issued chain (FieldChain, PEM, one line per value). A client may also
// submit the form with the first execute. "Fetch my latest certificate"
// (NodeLatest) completes at once with the same result form for the
// account's newest enrolled certificate. The account is always the bare JID
// of the IQ's from, which the server stamped; nothing in the form names it.
const (
	NSCommands = "http://jabber.org/protocol/commands"
	// NodeEnroll is "Request a certificate".
	NodeEnroll = "urn:x-saslcert:enroll"
	// NodeLatest is "Fetch my latest certificate".
	NodeLatest = "urn:x-saslcert:enroll:latest"
	// FormType is the FORM_TYPE of both commands' forms.
	FormType = "urn:x-saslcert:enroll"
)

// The fields of the commands' forms.
const (
	// In the request form (type form, submitted as type submit):
	FieldCSR              = "csr"                // text-multi: a PEM PKCS#10 CSR
	FieldSelfSigned       = "self-signed"        // text-single: name of an uploaded self-signed certificate (embedded CA only)
	FieldName             = "name"               // text-single: the name to store the certificate under
	FieldNoCertManagement = "no-cert-management" // boolean
	// In the result form (type result), also FieldName:
	FieldChain       = "chain"       // text-multi: PEM, the certificate then its intermediate CAs
	FieldFingerprint = "fingerprint" // text-single: sha256:<hex>
	FieldSerial      = "serial"      // text-single: hexadecimal
	FieldNotBefore   = "not-before"  // text-single: RFC 3339
	FieldNotAfter    = "not-after"   // text-single: RFC 3339
)

// commandNames are the commands' human-readable names.
var commandNames = map[string]string{
	NodeEnroll: "Request a certificate",
	NodeLatest: "Fetch my latest certificate",
}

// Enrollment is the part of *enroll.Service the component uses.
type Enrollment interface {
	DomainPolicy(account jid.JID) (enroll.DomainPolicy, bool)
	Offered(account jid.JID) bool
	Enroll(ctx context.Context, req *enroll.EnrollRequest) (*enroll.Enrolled, error)
	Latest(ctx context.Context, account jid.JID) (*enroll.Enrolled, error)
	Sweep(ctx context.Context) ([]enroll.Notice, error)
}

// EnableEnrollment makes the component offer the ad-hoc commands
// "Request a certificate" and "Fetch my latest certificate", served by e,
// and lets RunRenewal renew certificates. Call it before Run.
func (c *Component) EnableEnrollment(e Enrollment) {
	c.enroll = e
}

// Limits of the ad-hoc commands.
const (
	adhocSessionTTL  = 10 * time.Minute
	maxAdhocSessions = 4096
	// maxAdhocSessionsPerAccount bounds one account's open sessions.
	maxAdhocSessionsPerAccount = 4
	maxFormSize                = 64 << 10
)

// adhocSessions are the multi-stage command sessions in progress.
type adhocSessions struct {
	mu sync.Mutex
	m  map[string]adhocSession
}

type adhocSession struct {
	from    jid.JID // full JID
	node    string
	expires time.Time
}

// open starts a session for from; false if too many are open. An account
// has at most maxAdhocSessionsPerAccount open: opening another ends its
// oldest, so that one account cannot fill the table.
func (a *adhocSessions) open(from jid.JID, node string, now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[string]adhocSession)
	}
	account := from.Bare()
	n, oldest := 0, ""
	for id, s := range a.m {
		if s.from.Bare().Equal(account) {
			n++
			if oldest == "" || s.expires.Before(a.m[oldest].expires) {
				oldest = id
			}
		}
	}
	if n >= maxAdhocSessionsPerAccount {
		delete(a.m, oldest)
	}
	if len(a.m) >= maxAdhocSessions {
		for id, s := range a.m {
			if now.After(s.expires) {
				delete(a.m, id)
			}
		}
		if len(a.m) >= maxAdhocSessions {
			return "", false
		}
	}
	id := newID()
	a.m[id] = adhocSession{from: from, node: node, expires: now.Add(adhocSessionTTL)}
	return id, true
}

// take ends the session id if it belongs to from and node and has not
// expired, and reports whether it did.
func (a *adhocSessions) take(id string, from jid.JID, node string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.m[id]
	if !ok || !s.from.Equal(from) || s.node != node {
		return false
	}
	delete(a.m, id)
	return !now.After(s.expires)
}

// drop ends the session id if it belongs to from.
func (a *adhocSessions) drop(id string, from jid.JID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.m[id]; ok && s.from.Equal(from) {
		delete(a.m, id)
	}
}

// commandRequest is a <command/> a client sent.
type commandRequest struct {
	Node      string          `xml:"node,attr"`
	Action    string          `xml:"action,attr"`
	SessionID string          `xml:"sessionid,attr"`
	Forms     []submittedForm `xml:"jabber:x:data x"`
}

// commandError is a stanza error with an XEP-0050 condition (e.g.
// bad-sessionid) next to the stanza condition.
func (c *Component) commandError(iq stanza.IQ, se stanza.Error, cmdCond string) xml.TokenReader {
	if cmdCond == "" {
		return c.errorIQ(iq, se)
	}
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: stanza.ErrorIQ}.Wrap(
		se.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSCommands, Local: cmdCond}})))
}

// handleCommand serves XEP-0050 commands addressed to the component by a
// user of a served domain. The request is decoded on the stream goroutine;
// anything that needs the store or a CA runs on a worker.
func (l *link) handleCommand(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := l.c
	if iq.To.Localpart() != "" || iq.To.Resourcepart() != "" || c.enroll == nil {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ServiceUnavailable, "")))
	}
	if _, ok := c.domains[iq.From.Domainpart()]; !ok || iq.From.Localpart() == "" {
		c.log.Info("refused an ad-hoc command from outside the served domains", "from", iq.From.String())
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Auth, stanza.Forbidden, "only accounts of the served domains may request certificates here")))
	}
	var req commandRequest
	if err := decodeElement(*start, t, &req); err != nil {
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "unreadable <command/>"), "bad-payload"))
	}
	auth := c.requestAuth(t, iq.From, iq.ID)
	if _, ok := commandNames[req.Node]; !ok {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.ItemNotFound, "no such command")))
	}
	var form *submittedForm
	switch len(req.Forms) {
	case 0:
	case 1:
		form = &req.Forms[0]
	default:
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "more than one data form"), "bad-payload"))
	}
	if form != nil && form.size() > maxFormSize {
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "the form is too large"), "bad-payload"))
	}
	action := req.Action
	if action == "" {
		action = "execute"
	}
	if form != nil && form.Type == "cancel" {
		action = "cancel"
	}
	switch action {
	case "cancel":
		if req.SessionID != "" {
			c.adhoc.drop(req.SessionID, iq.From)
		}
		return send(t, c.commandReply(iq, req.Node, req.SessionID, "canceled", nil))
	case "execute", "complete":
	case "next", "prev":
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "this command has a single stage; use complete"), "bad-action"))
	default:
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "unknown action "+quoteText(action)), "malformed-action"))
	}
	if form != nil && form.Type != "submit" {
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "submit a data form of type submit"), "bad-payload"))
	}
	account := iq.From.Bare()
	if !c.enroll.Offered(account) && req.Node == NodeEnroll {
		return send(t, c.errorIQ(iq, stanzaErr(stanza.Cancel, stanza.NotAllowed, "certificates are not issued to accounts of "+account.Domainpart()+" here")))
	}
	now := c.cfg.Now()
	sid := req.SessionID
	var work func(ctx context.Context) xml.TokenReader
	switch {
	case req.Node == NodeLatest:
		if sid == "" {
			sid = newID()
		}
		work = func(ctx context.Context) xml.TokenReader { return c.latest(ctx, iq, sid) }
	case form == nil && sid != "":
		return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "submit the form (a CSR or the name of an uploaded certificate)"), "bad-payload"))
	case form == nil:
		id, ok := c.adhoc.open(iq.From, req.Node, now)
		if !ok {
			return send(t, c.errorIQ(iq, stanzaErr(stanza.Wait, stanza.ResourceConstraint, "too many command sessions in progress; try again shortly")))
		}
		return send(t, c.commandReply(iq, req.Node, id, "executing", c.enrollForm(account)))
	default:
		values, err := form.checked(enrollFields)
		if err != nil {
			return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, err.Error()), "bad-payload"))
		}
		if sid != "" && !c.adhoc.take(sid, iq.From, req.Node, now) {
			return send(t, c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest, "unknown or expired session; run the command again"), "bad-sessionid"))
		}
		if sid == "" {
			sid = newID()
		}
		work = func(ctx context.Context) xml.TokenReader { return c.enrollSubmitted(ctx, iq, auth, sid, values) }
	}
	err := l.dispatch(work, func() xml.TokenReader { return c.errorIQ(iq, internalError()) })
	if err != nil {
		return send(t, c.errorIQ(iq, refusal(err)))
	}
	return nil
}

// quoteText quotes s for an error text, shortened.
func quoteText(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// commandReply is the result IQ carrying <command status=...> with payload.
func (c *Component) commandReply(iq stanza.IQ, node, sid, status string, payload xml.TokenReader) xml.TokenReader {
	attrs := []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	if sid != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "sessionid"}, Value: sid})
	}
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "status"}, Value: status})
	return c.resultIQ(iq, xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: NSCommands, Local: "command"}, Attr: attrs}))
}

// note is an XEP-0050 <note type=typ>text</note>.
func note(typ, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{
		Name: xml.Name{Space: NSCommands, Local: "note"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}},
	})
}

// enrollForm is the first stage of "Request a certificate".
func (c *Component) enrollForm(account jid.JID) xml.TokenReader {
	p, _ := c.enroll.DomainPolicy(account)
	fields := []formField{
		{Var: "FORM_TYPE", Type: "hidden", Values: []string{FormType}},
		{Var: FieldCSR, Type: "text-multi", Label: "Certificate signing request (PEM)",
			Desc: "A PKCS#10 request for your key. It may name nothing but " + account.String() + " (as CN or xmppAddr); the certificate will carry exactly that JID."},
	}
	instructions := fmt.Sprintf("Paste a certificate signing request (PEM) for %s.", account)
	if p.Issuer == enroll.EmbeddedIssuer {
		fields = append(fields, formField{Var: FieldSelfSigned, Type: "text-single", Label: "Or: the name of an uploaded self-signed certificate",
			Desc: "The CA then certifies the key of that certificate (uploaded with XEP-0257)."})
		instructions += " Or name a self-signed certificate you uploaded; its key will be certified."
	}
	fields = append(fields,
		formField{Var: FieldName, Type: "text-single", Label: "Name for the new certificate",
			Desc: "How it is listed with your certificates; empty picks one."},
		formField{Var: FieldNoCertManagement, Type: "boolean", Label: "Logins with it may not manage certificates", Values: []string{"0"}},
	)
	actions := xmlstream.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSCommands, Local: "complete"}}),
		xml.StartElement{Name: xml.Name{Space: NSCommands, Local: "actions"}, Attr: []xml.Attr{{Name: xml.Name{Local: "execute"}, Value: "complete"}}})
	lifetime := p.EffectiveLifetime()
	instructions += fmt.Sprintf("\nThe certificate is valid for %s and is renewed for the same key before it expires where the CA allows it.", lifetime)
	return xmlstream.MultiReader(actions, dataForm("form", commandNames[NodeEnroll], instructions, fields))
}

// enrollFields are the fields of a submitted "Request a certificate" form
// (form.checked refuses anything ambiguous in them).
var enrollFields = map[string]fieldKind{
	"FORM_TYPE":           fieldSingle,
	FieldCSR:              fieldMulti,
	FieldSelfSigned:       fieldSingle,
	FieldName:             fieldSingle,
	FieldNoCertManagement: fieldBoolean,
}

// first is the first of v, or "".
func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// enrollSubmitted issues a certificate from a submitted form whose values
// form.checked accepted (on a worker), if the session may manage
// certificates as the request's auth stamp says.
func (c *Component) enrollSubmitted(ctx context.Context, iq stanza.IQ, auth xep0257.Auth, sid string, values map[string][]string) xml.TokenReader {
	account := iq.From.Bare()
	csrText := strings.TrimSpace(strings.Join(values[FieldCSR], "\n"))
	ssName := strings.TrimSpace(first(values[FieldSelfSigned]))
	if csrText == "" && ssName == "" {
		return c.commandError(iq, stanzaErr(stanza.Modify, stanza.BadRequest,
			"fill in "+FieldCSR+" (a PEM certificate signing request) or "+FieldSelfSigned+" (the name of an uploaded certificate)"), "bad-payload")
	}
	if err := c.certs.MayManage(ctx, iq.From, auth); err != nil {
		return c.errorIQ(iq, c.asStanzaError(err, "deciding management rights"))
	}
	ncm, _ := parseBoolean(first(values[FieldNoCertManagement])) // checked: absent is false
	req := &enroll.EnrollRequest{
		Account:          account,
		Actor:            iq.From.String(),
		Name:             first(values[FieldName]),
		SelfSignedName:   ssName,
		NoCertManagement: ncm,
	}
	if csrText != "" {
		csr, err := enroll.ParseCSR(csrText)
		if err != nil {
			return c.enrollFailed(iq, err)
		}
		req.CSR = csr
	}
	res, err := c.enroll.Enroll(ctx, req)
	if err != nil {
		return c.enrollFailed(iq, err)
	}
	r := res.Record
	text := fmt.Sprintf("Issued %q for %s, valid until %s. It is listed with your certificates; install it with your key and log in with SASL EXTERNAL.",
		r.Name, account, r.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	return c.commandReply(iq, NodeEnroll, sid, "completed", xmlstream.MultiReader(note("info", text), resultForm(res)))
}

// latest answers "Fetch my latest certificate" (on a worker).
func (c *Component) latest(ctx context.Context, iq stanza.IQ, sid string) xml.TokenReader {
	account := iq.From.Bare()
	res, err := c.enroll.Latest(ctx, account)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return c.commandReply(iq, NodeLatest, sid, "completed",
			note("info", account.String()+" has no active certificate issued here; use \""+commandNames[NodeEnroll]+"\"."))
	case err != nil:
		return c.enrollFailed(iq, err)
	}
	r := res.Record
	text := fmt.Sprintf("Your latest certificate is %q, valid until %s.", r.Name, r.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	return c.commandReply(iq, NodeLatest, sid, "completed", xmlstream.MultiReader(note("info", text), resultForm(res)))
}

// resultForm describes an issued certificate.
func resultForm(res *enroll.Enrolled) xml.TokenReader {
	r := res.Record
	var chain strings.Builder
	for _, der := range res.Chain {
		chain.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	}
	serial := ""
	if len(res.Chain) > 0 {
		if cert, err := x509.ParseCertificate(res.Chain[0]); err == nil {
			serial = cert.SerialNumber.Text(16)
		}
	}
	fields := []formField{
		{Var: "FORM_TYPE", Type: "hidden", Values: []string{FormType}},
		{Var: FieldName, Type: "text-single", Label: "Name", Values: []string{r.Name}},
		{Var: FieldFingerprint, Type: "text-single", Label: "Fingerprint", Values: []string{r.Fingerprint.String()}},
		{Var: FieldSerial, Type: "text-single", Label: "Serial number", Values: []string{serial}},
		{Var: FieldNotBefore, Type: "text-single", Label: "Valid from", Values: []string{r.NotBefore.UTC().Format(time.RFC3339)}},
		{Var: FieldNotAfter, Type: "text-single", Label: "Valid until", Values: []string{r.NotAfter.UTC().Format(time.RFC3339)}},
		{Var: FieldChain, Type: "text-multi", Label: "Certificate and CA chain (PEM)", Values: lines(chain.String())},
	}
	return dataForm("result", "Your certificate", "", fields)
}

// enrollAnswer is how the ad-hoc commands answer one kind of enroll error.
type enrollAnswer struct {
	typ     stanza.ErrorType
	cond    stanza.Condition
	cmdCond string // XEP-0050 condition beside it ("" for none)
	// text is the stanza error's text for the requester's domain and the
	// error's Detail.
	text func(domain, detail string) string
	// logMsg, if set, is logged (at logLevel) with the error: something
	// the administrator should see.
	logMsg   string
	logLevel slog.Level
}

// detailText answers with the error's Detail.
func detailText(_, detail string) string { return detail }

// fixedText answers with s.
func fixedText(s string) func(string, string) string { return func(string, string) string { return s } }

// enrollAnswers maps every kind of enroll error to its answer (the one
// table; enroll.KindOf reads the kind, never the error's text).
var enrollAnswers = map[enroll.Kind]enrollAnswer{
	enroll.KindNotOffered: {typ: stanza.Cancel, cond: stanza.NotAllowed, text: func(domain, _ string) string {
		return "certificates are not issued to accounts of " + domain + " here"
	}},
	enroll.KindBadRequest:   {typ: stanza.Modify, cond: stanza.BadRequest, cmdCond: "bad-payload", text: detailText},
	enroll.KindNotSupported: {typ: stanza.Cancel, cond: stanza.FeatureNotImplemented, text: detailText},
	enroll.KindRateLimited:  {typ: stanza.Wait, cond: stanza.ResourceConstraint, text: detailText},
	enroll.KindRejected: {typ: stanza.Cancel, cond: stanza.NotAllowed, text: fixedText("the CA refused the request"),
		logMsg: "the CA refused a certificate request", logLevel: slog.LevelWarn},
	enroll.KindPending: {typ: stanza.Wait, cond: stanza.ResourceConstraint, text: fixedText("the CA holds the request for approval; ask again later")},
	enroll.KindBadIssued: {typ: stanza.Cancel, cond: stanza.InternalServerError,
		text:   fixedText("the CA issued an unusable certificate, which was not stored; please tell your administrator"),
		logMsg: "the CA issued an unusable certificate; it was not stored (check the CA's template)", logLevel: slog.LevelError},
	enroll.KindUnavailable: {typ: stanza.Wait, cond: stanza.ServiceUnavailable, text: fixedText("the CA is unavailable; try again later"),
		logMsg: "the CA is unavailable", logLevel: slog.LevelWarn},
}

// enrollFailed maps an enrollment error to the answer: a stanza error it
// carries as is, an enroll error by enrollAnswers, a storage error by its
// sentinel.
func (c *Component) enrollFailed(iq stanza.IQ, err error) xml.TokenReader {
	var se stanza.Error
	cmdCond := ""
	kind, detail, isEnroll := enroll.KindOf(err)
	answer, known := enrollAnswers[kind]
	switch {
	case errors.As(err, &se):
	case isEnroll && known:
		if answer.logMsg != "" {
			c.log.Log(context.Background(), answer.logLevel, answer.logMsg, "from", iq.From.String(), "err", err)
		}
		se, cmdCond = stanzaErr(answer.typ, answer.cond, answer.text(iq.From.Domainpart(), detail)), answer.cmdCond
	case errors.Is(err, storage.ErrNameTaken):
		se = stanzaErr(stanza.Cancel, stanza.Conflict, "a certificate with that name already exists; choose another name")
	case errors.Is(err, storage.ErrLimit):
		se = stanzaErr(stanza.Modify, stanza.PolicyViolation, "you have as many active certificates as allowed; disable or revoke one first")
	case errors.Is(err, storage.ErrNotFound):
		se = stanzaErr(stanza.Cancel, stanza.ItemNotFound, "you have no active certificate of that name")
	case errors.Is(err, storage.ErrAccountDeleted):
		se = stanzaErr(stanza.Cancel, stanza.NotAllowed, "this account was deleted; certificates cannot be issued until the server confirms a new registration of the name (try again later)")
	default:
		se = c.asStanzaError(err, "processing a certificate request")
		if se.Condition == stanza.InternalServerError && errors.Is(err, storage.ErrUnavailable) {
			se.Text = map[string]string{"": "the certificate store is busy; try again"}
		}
	}
	return c.commandError(iq, se, cmdCond)
}

// commandItems lists the commands for disco#items on the commands node.
func (c *Component) commandItems() xml.TokenReader {
	var items []xml.TokenReader
	for _, node := range []string{NodeEnroll, NodeLatest} {
		items = append(items, xmlstream.Wrap(nil, xml.StartElement{
			Name: xml.Name{Space: nsDiscoItems, Local: "item"},
			Attr: []xml.Attr{
				{Name: xml.Name{Local: "jid"}, Value: c.cfg.JID.String()},
				{Name: xml.Name{Local: "node"}, Value: node},
				{Name: xml.Name{Local: "name"}, Value: commandNames[node]},
			},
		}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(items...), queryStart(nsDiscoItems, NSCommands))
}

// discoInfoFor is disco#info's answer for node, with the ad-hoc commands
// when enrollment is enabled.
func (c *Component) discoInfoFor(node string) (discoNode, bool) {
	if c.enroll != nil {
		switch node {
		case "":
			base := discoInfo[""]
			return discoNode{identities: base.identities, features: append(slices.Clone(base.features), NSCommands)}, true
		case NodeEnroll, NodeLatest:
			return discoNode{
				identities: []discoIdentity{{Category: "automation", Type: "command-node", Name: commandNames[node]}},
				features:   []string{NSCommands, NSDataForms},
			}, true
		}
	}
	n, ok := discoInfo[node]
	return n, ok
}
