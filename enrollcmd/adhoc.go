package enrollcmd

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/commands"
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
	// NSCommands is XEP-0050's namespace (mellium's commands.NS).
	NSCommands = commands.NS
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

// Nodes are the commands' nodes, in the order disco#items lists them.
var Nodes = []string{NodeEnroll, NodeLatest}

// Name is the human-readable name of the command at node ("" if none).
func Name(node string) string { return commandNames[node] }

// Enrollment is the part of *enroll.Service the commands use.
type Enrollment interface {
	DomainPolicy(account jid.JID) (enroll.DomainPolicy, bool)
	Offered(account jid.JID) bool
	Enroll(ctx context.Context, req *enroll.EnrollRequest) (*enroll.Enrolled, error)
	Latest(ctx context.Context, account jid.JID) (*enroll.Enrolled, error)
}

// Handler serves the commands. Set its fields before the first request; its
// methods are safe for concurrent use.
type Handler struct {
	// Enroll issues and finds certificates (required).
	Enroll Enrollment
	// MayManage is the one decision on management rights
	// (xep0257.Handler.MayManage): a session that may not manage
	// certificates may not request one either.
	MayManage func(ctx context.Context, from jid.JID, auth xep0257.Auth) error
	// StanzaError maps an error that is not enrollment's own (the store,
	// management rights) to the stanza error answered; doing says what
	// failed (for the log).
	StanzaError func(err error, doing string) stanza.Error
	// Now is the clock (time.Now if nil).
	Now func() time.Time
	// Logger receives refusals by the CA (nothing is logged if nil).
	Logger *slog.Logger

	sessions adhocSessions
}

func (h *Handler) now() time.Time {
	if h.Now == nil {
		return time.Now()
	}
	return h.Now()
}

func (h *Handler) log() *slog.Logger {
	if h.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return h.Logger
}

// Limits of the ad-hoc commands.
const (
	adhocSessionTTL  = 10 * time.Minute
	maxAdhocSessions = 4096
	// maxAdhocSessionsPerAccount bounds one account's open sessions.
	maxAdhocSessionsPerAccount = 4
	maxFormSize                = 64 << 10
)

// Request is a <command/> a client sent (Decode).
type Request struct {
	Node      string          `xml:"node,attr"`
	Action    string          `xml:"action,attr"`
	SessionID string          `xml:"sessionid,attr"`
	Forms     []submittedForm `xml:"jabber:x:data x"`
}

// Decode reads the <command/> whose start was read from r. If it is
// unreadable, the reply to send is returned instead.
func Decode(start xml.StartElement, r xml.TokenReader) (*Request, *Reply) {
	var req Request
	if err := decodeElement(start, r, &req); err != nil {
		rep := errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "unreadable <command/>"), "bad-payload")
		return nil, &rep
	}
	return &req, nil
}

// Handle serves req from from, an account of a served domain (the caller
// checked it), on the stream goroutine: it returns either the reply to send
// now (work nil) or work that needs the store or a CA, to be run on a
// worker, whose Reply is then sent. auth is the request's auth stamp.
func (h *Handler) Handle(from jid.JID, req *Request, auth xep0257.Auth) (reply Reply, work func(ctx context.Context) Reply) {
	if _, ok := commandNames[req.Node]; !ok {
		return errReply(stanzaErr(stanza.Cancel, stanza.ItemNotFound, "no such command"), ""), nil
	}
	var form *submittedForm
	switch len(req.Forms) {
	case 0:
	case 1:
		form = &req.Forms[0]
	default:
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "more than one data form"), "bad-payload"), nil
	}
	if form != nil && form.size() > maxFormSize {
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "the form is too large"), "bad-payload"), nil
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
			h.sessions.drop(req.SessionID, from)
		}
		return commandReply(req.Node, req.SessionID, "canceled", nil), nil
	case "execute", "complete":
	case "next", "prev":
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "this command has a single stage; use complete"), "bad-action"), nil
	default:
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "unknown action "+quoteText(action)), "malformed-action"), nil
	}
	if form != nil && form.Type != "submit" {
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "submit a data form of type submit"), "bad-payload"), nil
	}
	account := from.Bare()
	if !h.Enroll.Offered(account) && req.Node == NodeEnroll {
		return errReply(stanzaErr(stanza.Cancel, stanza.NotAllowed, "certificates are not issued to accounts of "+account.Domainpart()+" here"), ""), nil
	}
	now := h.now()
	sid := req.SessionID
	switch {
	case req.Node == NodeLatest:
		if sid == "" {
			sid = newID()
		}
		return Reply{}, func(ctx context.Context) Reply { return h.latest(ctx, from, sid) }
	case form == nil && sid != "":
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "submit the form (a CSR or the name of an uploaded certificate)"), "bad-payload"), nil
	case form == nil:
		id, ok := h.sessions.open(from, req.Node, now)
		if !ok {
			return errReply(stanzaErr(stanza.Wait, stanza.ResourceConstraint, "too many command sessions in progress; try again shortly"), ""), nil
		}
		return commandReply(req.Node, id, "executing", h.enrollForm(account)), nil
	default:
		values, err := form.checked(enrollFields)
		if err != nil {
			return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, err.Error()), "bad-payload"), nil
		}
		if sid != "" && !h.sessions.take(sid, from, req.Node, now) {
			return errReply(stanzaErr(stanza.Modify, stanza.BadRequest, "unknown or expired session; run the command again"), "bad-sessionid"), nil
		}
		if sid == "" {
			sid = newID()
		}
		return Reply{}, func(ctx context.Context) Reply { return h.enrollSubmitted(ctx, from, auth, sid, values) }
	}
}

// quoteText quotes s for an error text, shortened.
func quoteText(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return fmt.Sprintf("%q", s)
}

// commandReply is the <command status=...> with payload.
func commandReply(node, sid, status string, payload xml.TokenReader) Reply {
	attrs := []xml.Attr{{Name: xml.Name{Local: "node"}, Value: node}}
	if sid != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "sessionid"}, Value: sid})
	}
	attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "status"}, Value: status})
	return Reply{Command: xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: NSCommands, Local: "command"}, Attr: attrs})}
}

// note is an XEP-0050 <note type=typ>text</note>.
func note(typ, text string) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.Token(xml.CharData(text)), xml.StartElement{
		Name: xml.Name{Space: NSCommands, Local: "note"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: typ}},
	})
}

// enrollForm is the first stage of "Request a certificate".
func (h *Handler) enrollForm(account jid.JID) xml.TokenReader {
	p, _ := h.Enroll.DomainPolicy(account)
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
func (h *Handler) enrollSubmitted(ctx context.Context, from jid.JID, auth xep0257.Auth, sid string, values map[string][]string) Reply {
	account := from.Bare()
	csrText := strings.TrimSpace(strings.Join(values[FieldCSR], "\n"))
	ssName := strings.TrimSpace(first(values[FieldSelfSigned]))
	if csrText == "" && ssName == "" {
		return errReply(stanzaErr(stanza.Modify, stanza.BadRequest,
			"fill in "+FieldCSR+" (a PEM certificate signing request) or "+FieldSelfSigned+" (the name of an uploaded certificate)"), "bad-payload")
	}
	if err := h.MayManage(ctx, from, auth); err != nil {
		return errReply(h.StanzaError(err, "deciding management rights"), "")
	}
	ncm, _ := parseBoolean(first(values[FieldNoCertManagement])) // checked: absent is false
	req := &enroll.EnrollRequest{
		Account:          account,
		Actor:            from.String(),
		Name:             first(values[FieldName]),
		SelfSignedName:   ssName,
		NoCertManagement: ncm,
	}
	if csrText != "" {
		csr, err := enroll.ParseCSR(csrText)
		if err != nil {
			return h.enrollFailed(from, err)
		}
		req.CSR = csr
	}
	res, err := h.Enroll.Enroll(ctx, req)
	if err != nil {
		return h.enrollFailed(from, err)
	}
	r := res.Record
	text := fmt.Sprintf("Issued %q for %s, valid until %s. It is listed with your certificates; install it with your key and log in with SASL EXTERNAL.",
		r.Name, account, r.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	return commandReply(NodeEnroll, sid, "completed", xmlstream.MultiReader(note("info", text), resultForm(res)))
}

// latest answers "Fetch my latest certificate" (on a worker).
func (h *Handler) latest(ctx context.Context, from jid.JID, sid string) Reply {
	account := from.Bare()
	res, err := h.Enroll.Latest(ctx, account)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return commandReply(NodeLatest, sid, "completed",
			note("info", account.String()+" has no active certificate issued here; use \""+commandNames[NodeEnroll]+"\"."))
	case err != nil:
		return h.enrollFailed(from, err)
	}
	r := res.Record
	text := fmt.Sprintf("Your latest certificate is %q, valid until %s.", r.Name, r.NotAfter.UTC().Format("2006-01-02 15:04 MST"))
	return commandReply(NodeLatest, sid, "completed", xmlstream.MultiReader(note("info", text), resultForm(res)))
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
func (h *Handler) enrollFailed(from jid.JID, err error) Reply {
	var se stanza.Error
	cmdCond := ""
	kind, detail, isEnroll := enroll.KindOf(err)
	answer, known := enrollAnswers[kind]
	switch {
	case errors.As(err, &se):
	case isEnroll && known:
		if answer.logMsg != "" {
			h.log().Log(context.Background(), answer.logLevel, answer.logMsg, "from", from.String(), "err", err)
		}
		se, cmdCond = stanzaErr(answer.typ, answer.cond, answer.text(from.Domainpart(), detail)), answer.cmdCond
	case errors.Is(err, storage.ErrNameTaken):
		se = stanzaErr(stanza.Cancel, stanza.Conflict, "a certificate with that name already exists; choose another name")
	case errors.Is(err, storage.ErrLimit):
		se = stanzaErr(stanza.Modify, stanza.PolicyViolation, "you have as many active certificates as allowed; disable or revoke one first")
	case errors.Is(err, storage.ErrNotFound):
		se = stanzaErr(stanza.Cancel, stanza.ItemNotFound, "you have no active certificate of that name")
	case errors.Is(err, storage.ErrAccountDeleted):
		se = stanzaErr(stanza.Cancel, stanza.NotAllowed, "this account was deleted; certificates cannot be issued until the server confirms a new registration of the name (try again later)")
	default:
		se = h.StanzaError(err, "processing a certificate request")
		if se.Condition == stanza.InternalServerError && errors.Is(err, storage.ErrUnavailable) {
			se.Text = map[string]string{"": "the certificate store is busy; try again"}
		}
	}
	return errReply(se, cmdCond)
}
