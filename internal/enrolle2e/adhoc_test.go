package enrolle2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"sort"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/commands"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enrollcmd"
)

// The client side of the XEP-0050 commands, with mellium's commands
// package and hand-made data forms.

// cmdResult is what a command answered.
type cmdResult struct {
	Status  string
	SID     string
	Notes   []string
	Form    *dataForm
	Actions []string
}

type dataForm struct {
	Type   string      `xml:"type,attr"`
	Fields []formField `xml:"field"`
}

type formField struct {
	Var    string   `xml:"var,attr"`
	Type   string   `xml:"type,attr"`
	Values []string `xml:"value"`
}

// value is the field's values joined by newlines ("" if absent), and
// whether the field is there.
func (f *dataForm) value(name string) (string, bool) {
	if f == nil {
		return "", false
	}
	for _, fl := range f.Fields {
		if fl.Var == name {
			return strings.Join(fl.Values, "\n"), true
		}
	}
	return "", false
}

// execute runs one stage of a command and reads the answer. It sends the
// IQ itself rather than with commands.Command.Execute: in mellium v0.23.0
// Execute never closes the response to an error reply (its deferred Close
// sees the named result already set to nil), which stalls the session's
// input for good.
func execute(ctx context.Context, s *xmpp.Session, cmd commands.Command, payload xml.TokenReader) (*cmdResult, error) {
	attrs := []xml.Attr{{Name: xml.Name{Local: "node"}, Value: cmd.Node}}
	if cmd.Action != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "action"}, Value: cmd.Action})
	}
	if cmd.SID != "" {
		attrs = append(attrs, xml.Attr{Name: xml.Name{Local: "sessionid"}, Value: cmd.SID})
	}
	var resp struct {
		Status string `xml:"status,attr"`
		SID    string `xml:"sessionid,attr"`
		Notes  []struct {
			Text string `xml:",chardata"`
		} `xml:"note"`
		Form    *dataForm `xml:"jabber:x:data x"`
		Actions *struct {
			Children []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"actions"`
	}
	iq := stanza.IQ{Type: stanza.SetIQ, To: cmd.JID}
	req := xmlstream.Wrap(payload, xml.StartElement{Name: xml.Name{Space: commands.NS, Local: "command"}, Attr: attrs})
	if err := s.UnmarshalIQ(ctx, iq.Wrap(req), &resp); err != nil {
		return nil, err
	}
	res := &cmdResult{Status: resp.Status, SID: resp.SID, Form: resp.Form}
	for _, n := range resp.Notes {
		res.Notes = append(res.Notes, n.Text)
	}
	if resp.Actions != nil {
		for _, c := range resp.Actions.Children {
			res.Actions = append(res.Actions, c.XMLName.Local)
		}
	}
	return res, nil
}

// submitForm is <x type='submit'> with fields (text-multi values split into
// lines).
func submitForm(fields map[string]string) xml.TokenReader {
	names := make([]string, 0, len(fields))
	for n := range fields {
		names = append(names, n)
	}
	sort.Strings(names)
	children := []xml.TokenReader{field("FORM_TYPE", enrollcmd.FormType)}
	for _, n := range names {
		children = append(children, field(n, strings.Split(strings.TrimRight(fields[n], "\n"), "\n")...))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(children...), xml.StartElement{
		Name: xml.Name{Space: enrollcmd.NSDataForms, Local: "x"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "type"}, Value: "submit"}},
	})
}

func field(name string, values ...string) xml.TokenReader {
	var vs []xml.TokenReader
	for _, v := range values {
		vs = append(vs, xmlstream.Wrap(xmlstream.Token(xml.CharData(v)), xml.StartElement{Name: xml.Name{Local: "value"}}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(vs...), xml.StartElement{
		Name: xml.Name{Local: "field"},
		Attr: []xml.Attr{{Name: xml.Name{Local: "var"}, Value: name}},
	})
}

// requestCert runs "Request a certificate" in two stages: execute (gets the
// form), then complete with fields. It returns the final answer.
func requestCert(t *testing.T, s *xmpp.Session, comp jid.JID, fields map[string]string) (*cmdResult, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	first, err := execute(ctx, s, commands.Command{JID: comp, Node: enrollcmd.NodeEnroll, Action: "execute"}, nil)
	if err != nil {
		return nil, err
	}
	if first.Status != "executing" || first.SID == "" || first.Form == nil || first.Form.Type != "form" {
		t.Fatalf("first stage: status %q, session %q, form %+v; want executing with a form", first.Status, first.SID, first.Form)
	}
	if _, ok := first.Form.value(enrollcmd.FieldCSR); !ok {
		t.Fatalf("the form has no %s field: %+v", enrollcmd.FieldCSR, first.Form)
	}
	return execute(ctx, s, commands.Command{JID: comp, Node: enrollcmd.NodeEnroll, Action: "complete", SID: first.SID}, submitForm(fields))
}

// fetchLatest runs "Fetch my latest certificate".
func fetchLatest(t *testing.T, s *xmpp.Session, comp jid.JID) *cmdResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	res, err := execute(ctx, s, commands.Command{JID: comp, Node: enrollcmd.NodeLatest, Action: "execute"}, nil)
	if err != nil {
		t.Fatalf("Fetch my latest certificate: %v", err)
	}
	if res.Status != "completed" {
		t.Fatalf("Fetch my latest certificate: status %q", res.Status)
	}
	return res
}

// listCommands returns the component's commands (node -> name) from
// disco#items.
func listCommands(t *testing.T, s *xmpp.Session, comp jid.JID) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	iter := commands.Fetch(ctx, comp, s)
	defer iter.Close()
	out := map[string]string{}
	for iter.Next() {
		c := iter.Command()
		out[c.Node] = c.Name
	}
	if err := iter.Err(); err != nil {
		t.Fatalf("disco#items of %s: %v", comp, err)
	}
	return out
}

// csrPEM makes a CSR for key asking for the xmppAddr addr ("" for none).
func csrPEM(t *testing.T, key crypto.Signer, cn, addr string) string {
	t.Helper()
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}
	if addr != "" {
		san, err := enroll.XMPPAddrSAN(jid.MustParse(addr))
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: []int{2, 5, 29, 17}, Value: san}}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
}

// stanzaError returns err's stanza error, failing t if it is none.
func stanzaError(t *testing.T, err error) stanza.Error {
	t.Helper()
	var se stanza.Error
	if !errors.As(err, &se) {
		t.Fatalf("want a stanza error, got %v", err)
	}
	return se
}

// deadline is a context for one step.
func deadline() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), stepTimeout)
}
