package component

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/xmpptest"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

// startEnrollEnv starts a component with enrollment (the embedded CA for
// example.org, unless policy says otherwise) on a real store, connected to
// a fake server.
func startEnrollEnv(t *testing.T, policy *enroll.DomainPolicy) (*env, *enroll.Service) {
	t.Helper()
	srv := newFakeServer(t, testSecret)
	cfg, buf := testConfig(t, srv.addr())
	db := sqlitetest.Open(t, sqlite.Options{Now: fixedNow})
	dir := filepath.Join(t.TempDir(), "ca")
	if err := localca.Init(dir, localca.InitOptions{Now: fixedNow}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	p := enroll.DomainPolicy{Issuer: enroll.EmbeddedIssuer, Lifetime: 24 * time.Hour, AllowSelfSigned: true}
	if policy != nil {
		p = *policy
	}
	svc, err := enroll.NewService(enroll.ServiceConfig{
		Store:    db,
		Issuers:  map[string]enroll.Issuer{enroll.EmbeddedIssuer: ca},
		Policies: enroll.Policies{domain: p},
		Now:      fixedNow,
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := &xep0257.Handler{Store: db, Now: fixedNow, Logger: cfg.Logger}
	auth := &sasl.Authorizer{Store: db, Now: fixedNow}
	comp, err := New(cfg, certs, auth)
	if err != nil {
		t.Fatal(err)
	}
	wire(comp, certs)
	comp.EnableEnrollment(svc)
	e := &env{srv: srv, comp: comp, db: db, certs: certs, log: buf}
	e.stop = run(t, comp)
	e.fc = srv.next(t)
	waitConnected(t, comp)
	return e, svc
}

// command is a <command/> IQ from a user to the component, stamped by the
// server plugin as from a password login (direct).
func command(id, from, node, action, sid, payload string) string {
	return direct(id, "set", from, commandXML(node, action, sid, payload))
}

// commandStamped is command with the given stamp ("": none) instead.
func commandStamped(id, from, node, action, sid, payload, stamp string) string {
	return directRaw(id, "set", from, commandXML(node, action, sid, payload)+stamp)
}

func commandXML(node, action, sid, payload string) string {
	attrs := fmt.Sprintf("node='%s'", node)
	if action != "" {
		attrs += fmt.Sprintf(" action='%s'", action)
	}
	if sid != "" {
		attrs += fmt.Sprintf(" sessionid='%s'", sid)
	}
	return fmt.Sprintf("<command xmlns='%s' %s>%s</command>", NSCommands, attrs, payload)
}

// submit is a submitted form with the given fields (text-multi values split
// at newlines).
func submit(fields ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>%s</value></field>", FormType)
	for i := 0; i+1 < len(fields); i += 2 {
		fmt.Fprintf(&b, "<field var='%s'>", fields[i])
		for _, line := range strings.Split(fields[i+1], "\n") {
			fmt.Fprintf(&b, "<value>%s</value>", line)
		}
		b.WriteString("</field>")
	}
	b.WriteString("</x>")
	return b.String()
}

// formValue is the joined values of the field var in the <x/> of cmd.
func formValue(cmd *node, v string) string {
	for _, f := range cmd.child(NSDataForms, "x").elements() {
		if f.XMLName.Local == "field" && f.attr("var") == v {
			var vals []string
			for _, c := range f.elements() {
				if c.XMLName.Local == "value" {
					vals = append(vals, c.Text)
				}
			}
			return strings.Join(vals, "\n")
		}
	}
	return ""
}

func csrText(t *testing.T, o catest.CSROptions) string {
	return strings.TrimSpace(string(catest.CSRPEM(catest.NewCSR(t, o))))
}

const aliceFull = "alice@example.org/phone"

func TestAdhocDisco(t *testing.T) {
	e, _ := startEnrollEnv(t, nil)
	n := e.fc.roundTrip(t, direct("i1", "get", aliceFull, "<query xmlns='"+nsDiscoInfo+"'/>"))
	checkResult(t, n, "i1", aliceFull)
	found := false
	for _, f := range n.child("", "query").elements() {
		found = found || f.attr("var") == NSCommands
	}
	if !found {
		t.Fatalf("disco#info does not list %s: %s", NSCommands, n)
	}
	n = e.fc.roundTrip(t, direct("i2", "get", aliceFull, "<query xmlns='"+nsDiscoItems+"' node='"+NSCommands+"'/>"))
	checkResult(t, n, "i2", aliceFull)
	items := n.child("", "query").elements()
	if len(items) != 2 || items[0].attr("node") != NodeEnroll || items[0].attr("jid") != compJID || items[1].attr("node") != NodeLatest ||
		items[0].attr("name") != "Request a certificate" {
		t.Fatalf("command items: %s", n)
	}
	n = e.fc.roundTrip(t, direct("i3", "get", aliceFull, "<query xmlns='"+nsDiscoInfo+"' node='"+NodeEnroll+"'/>"))
	checkResult(t, n, "i3", aliceFull)
	if id := n.path("query", "identity"); id.attr("category") != "automation" || id.attr("type") != "command-node" {
		t.Fatalf("command node info: %s", n)
	}
}

func TestAdhocNotEnabled(t *testing.T) {
	e := startEnv(t, nil)
	n := e.fc.roundTrip(t, command("c1", aliceFull, NodeEnroll, "execute", "", ""))
	checkError(t, n, "c1", "cancel", "service-unavailable")
	n = e.fc.roundTrip(t, direct("i1", "get", aliceFull, "<query xmlns='"+nsDiscoItems+"' node='"+NSCommands+"'/>"))
	checkError(t, n, "i1", "cancel", "item-not-found")
}

func TestAdhocRequestCertificate(t *testing.T) {
	e, _ := startEnrollEnv(t, nil)
	// Stage 1: the form.
	n := e.fc.roundTrip(t, command("c1", aliceFull, NodeEnroll, "execute", "", ""))
	checkResult(t, n, "c1", aliceFull)
	cmd := n.child(NSCommands, "command")
	sid := cmd.attr("sessionid")
	if cmd.attr("status") != "executing" || sid == "" || cmd.attr("node") != NodeEnroll || cmd.path("actions", "complete") == nil {
		t.Fatalf("stage 1: %s", n)
	}
	x := cmd.child(NSDataForms, "x")
	if x.attr("type") != "form" || !strings.Contains(n.String(), "var=\""+FieldCSR+"\"") || !strings.Contains(n.String(), "var=\""+FieldSelfSigned+"\"") {
		t.Fatalf("stage 1 form: %s", n)
	}
	// Stage 2 from another resource: not that session.
	n = e.fc.roundTrip(t, command("c2", "alice@example.org/laptop", NodeEnroll, "complete", sid, submit(FieldCSR, csrText(t, catest.CSROptions{}))))
	checkError(t, n, "c2", "modify", "bad-request")
	if n.path("error", "bad-sessionid") == nil {
		t.Fatalf("want <bad-sessionid/>: %s", n)
	}
	// Stage 2.
	n = e.fc.roundTrip(t, command("c3", aliceFull, NodeEnroll, "complete", sid, submit(FieldCSR, csrText(t, catest.CSROptions{}), FieldName, "laptop")))
	checkResult(t, n, "c3", aliceFull)
	cmd = n.child(NSCommands, "command")
	if cmd.attr("status") != "completed" || cmd.attr("sessionid") != sid || cmd.child(NSDataForms, "x").attr("type") != "result" ||
		cmd.child(NSCommands, "note") == nil {
		t.Fatalf("stage 2: %s", n)
	}
	chain := formValue(cmd, FieldChain)
	b, rest := pem.Decode([]byte(chain))
	if b == nil || !strings.Contains(string(rest), "BEGIN CERTIFICATE") {
		t.Fatalf("chain %q", chain)
	}
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.db.FindCertByFingerprint(context.Background(), storage.FingerprintOf(b.Bytes))
	if err != nil || rec.Account != "alice@example.org" || rec.Name != "laptop" || rec.Source != storage.SourceEnrolled {
		t.Fatalf("record %+v %v", rec, err)
	}
	if formValue(cmd, FieldFingerprint) != rec.Fingerprint.String() || formValue(cmd, FieldSerial) != leaf.SerialNumber.Text(16) {
		t.Fatalf("result form: %s", n)
	}
	// The session is used up.
	n = e.fc.roundTrip(t, command("c4", aliceFull, NodeEnroll, "complete", sid, submit(FieldCSR, csrText(t, catest.CSROptions{}))))
	if checkError(t, n, "c4", "modify", "bad-request"); n.path("error", "bad-sessionid") == nil {
		t.Fatalf("reused session: %s", n)
	}

	// One stage: the form with the first execute; the latest certificate.
	n = e.fc.roundTrip(t, command("c5", aliceFull, NodeEnroll, "", "", submit(FieldCSR, csrText(t, catest.CSROptions{}), FieldName, "second")))
	checkResult(t, n, "c5", aliceFull)
	if cmd := n.child(NSCommands, "command"); cmd.attr("status") != "completed" || cmd.attr("sessionid") == "" {
		t.Fatalf("one stage: %s", n)
	}
	n = e.fc.roundTrip(t, command("c6", aliceFull, NodeLatest, "execute", "", ""))
	checkResult(t, n, "c6", aliceFull)
	if formValue(n.child(NSCommands, "command"), FieldName) != "second" {
		t.Fatalf("latest: %s", n)
	}
}

func TestAdhocRefusals(t *testing.T) {
	e, _ := startEnrollEnv(t, nil)
	// Latest before anything was issued: a note.
	n := e.fc.roundTrip(t, command("l1", aliceFull, NodeLatest, "execute", "", ""))
	checkResult(t, n, "l1", aliceFull)
	if cmd := n.child(NSCommands, "command"); cmd.attr("status") != "completed" || cmd.child(NSCommands, "note") == nil || cmd.child(NSDataForms, "x") != nil {
		t.Fatalf("latest with none: %s", n)
	}
	// Cancel.
	n = e.fc.roundTrip(t, command("x1", aliceFull, NodeEnroll, "execute", "", ""))
	sid := n.child(NSCommands, "command").attr("sessionid")
	n = e.fc.roundTrip(t, command("x2", aliceFull, NodeEnroll, "cancel", sid, ""))
	checkResult(t, n, "x2", aliceFull)
	if n.child(NSCommands, "command").attr("status") != "canceled" {
		t.Fatalf("cancel: %s", n)
	}
	tests := []struct {
		name, raw, typ, cond, cmdCond, text string
	}{
		{"unknown-node", command("r1", aliceFull, "urn:x-other", "execute", "", ""), "cancel", "item-not-found", "", ""},
		{"other-domain", command("r2", "eve@example.com/x", NodeEnroll, "execute", "", ""), "auth", "forbidden", "", ""},
		{"domain-itself", command("r3", domain, NodeEnroll, "execute", "", ""), "auth", "forbidden", "", ""},
		{"next", command("r4", aliceFull, NodeEnroll, "next", "", ""), "modify", "bad-request", "bad-action", ""},
		{"bogus-action", command("r5", aliceFull, NodeEnroll, "explode", "", ""), "modify", "bad-request", "malformed-action", ""},
		{"empty-form", command("r6", aliceFull, NodeEnroll, "complete", "", submit(FieldName, "x")), "modify", "bad-request", "bad-payload", FieldCSR},
		{"form-type", command("r7", aliceFull, NodeEnroll, "complete", "", "<x xmlns='jabber:x:data' type='result'/>"), "modify", "bad-request", "bad-payload", "submit"},
		{"bad-pem", command("r8", aliceFull, NodeEnroll, "complete", "", submit(FieldCSR, "-----BEGIN CERTIFICATE REQUEST-----\nxx")), "modify", "bad-request", "bad-payload", "PEM"},
		{"other-jid", command("r9", aliceFull, NodeEnroll, "complete", "", submit(FieldCSR, csrText(t, catest.CSROptions{XMPPAddr: "bob@example.org"}))),
			"modify", "bad-request", "bad-payload", "bob@example.org"},
		{"unknown-upload", command("r10", aliceFull, NodeEnroll, "complete", "", submit(FieldSelfSigned, "nope")), "cancel", "item-not-found", "", ""},
		{"unknown-session", command("r11", aliceFull, NodeEnroll, "complete", "sc-nope", submit(FieldCSR, csrText(t, catest.CSROptions{}))), "modify", "bad-request", "bad-sessionid", ""},
		{"session-without-form", command("r12", aliceFull, NodeEnroll, "complete", sid, ""), "modify", "bad-request", "bad-payload", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, tt.raw)
			el := checkErrorChild(t, n, tt.typ, tt.cond)
			if tt.cmdCond != "" && el.child(NSCommands, tt.cmdCond) == nil {
				t.Fatalf("want <%s xmlns='%s'/>: %s", tt.cmdCond, NSCommands, n)
			}
			if !strings.Contains(el.path("text").Text, tt.text) {
				t.Fatalf("text %q lacks %q", el.path("text").Text, tt.text)
			}
		})
	}
	if n := len(e.activeCerts(t, "alice@example.org")); n != 0 {
		t.Fatalf("%d certificates stored by refused requests", n)
	}

	// A session that logged in with a no-cert-management certificate.
	up := newCert(t, "alice@example.org")
	e.appendDirect(t, aliceFull, "locked", up.DER, true)
	e.fc.roundTrip(t, pluginIQ("s1", "set", domain, sessionXML("bound", "alice@example.org/locked", storage.FingerprintOf(up.DER))))
	const locked = "alice@example.org/locked"
	n = e.fc.roundTrip(t, commandStamped("m1", locked, NodeEnroll, "", "", submit(FieldCSR, csrText(t, catest.CSROptions{})),
		certStamp(locked, "m1", up.DER, false)))
	checkError(t, n, "m1", "auth", "forbidden")

	// Management rights come from the request's stamp, never from what
	// the component knows (or does not yet know) about the session.
	const unknown = "alice@example.org/not-yet-announced"
	csr := submit(FieldCSR, csrText(t, catest.CSROptions{}))
	for _, tc := range []struct {
		name, raw, text string
	}{
		{"grant-says-no", commandStamped("m2", unknown, NodeEnroll, "", "", csr, certStamp(unknown, "m2", newCert(t, "alice@example.org").DER, false)), "may not manage"},
		{"record-says-no", commandStamped("m3", locked, NodeEnroll, "", "", csr, certStamp(locked, "m3", up.DER, true)), "may not manage"},
		{"trusted-root-not-on-record", commandStamped("m4", unknown, NodeEnroll, "", "", csr, certStamp(unknown, "m4", newCert(t, "alice@example.org").DER, true)), "not on record"},
		{"no-stamp", commandStamped("m5", unknown, NodeEnroll, "", "", csr, ""), "did not say how this session logged in"},
		{"forged-mac", commandStamped("m6", unknown, NodeEnroll, "", "", csr,
			strings.Replace(passwordStamp(unknown, "m6"), "mac='", "mac='00", 1)), "did not say"},
		{"stamp-of-another-session", commandStamped("m7", unknown, NodeEnroll, "", "", csr, passwordStamp(aliceFull, "m7")), "did not say"},
		{"stamp-of-another-request", commandStamped("m8", unknown, NodeEnroll, "", "", csr, passwordStamp(unknown, "m1")), "did not say"},
		{"two-stamps", commandStamped("m9", unknown, NodeEnroll, "", "", csr, passwordStamp(unknown, "m9")+passwordStamp(unknown, "m9")), "did not say"},
		{"stamp-with-another-secret", commandStamped("m10", unknown, NodeEnroll, "", "", csr,
			strings.Replace(passwordStamp(unknown, "m10"), "mac='"+pluginproto.StampMAC([]byte(testSecret), unknown, "m10", string(pluginproto.MethodOther), "", "true"),
				"mac='"+pluginproto.StampMAC([]byte("another secret"), unknown, "m10", string(pluginproto.MethodOther), "", "true"), 1)), "did not say"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, tc.raw)
			el := checkErrorChild(t, n, "auth", "forbidden")
			if !strings.Contains(el.path("text").Text, tc.text) {
				t.Fatalf("text %q lacks %q", el.path("text").Text, tc.text)
			}
		})
	}
	if got := e.activeCerts(t, "alice@example.org"); len(got) != 1 || got[0].Name != "locked" {
		t.Fatalf("refused requests stored certificates: %d active", len(got))
	}
}

func TestAdhocNotOffered(t *testing.T) {
	e, _ := startEnrollEnv(t, &enroll.DomainPolicy{AllowSelfSigned: true})
	n := e.fc.roundTrip(t, command("c1", aliceFull, NodeEnroll, "execute", "", ""))
	checkError(t, n, "c1", "cancel", "not-allowed")
}

// fakeEnrollment returns notices from Sweep.
type fakeEnrollment struct {
	Enrollment
	mu      sync.Mutex
	notices []enroll.Notice
	sweeps  int
}

func (f *fakeEnrollment) Sweep(context.Context) ([]enroll.Notice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sweeps++
	n := f.notices
	f.notices = nil
	return n, nil
}

func TestRunRenewalSendsMessages(t *testing.T) {
	e := startEnv(t, nil)
	fe := &fakeEnrollment{notices: []enroll.Notice{
		{Kind: enroll.NoticeRenewed, Account: jid.MustParse("alice@example.org"),
			Old: &storage.Cert{Name: "tablet", NotAfter: fixedNow().Add(time.Hour)},
			New: &storage.Cert{Name: "tablet (renewed)", NotAfter: fixedNow().Add(25 * time.Hour)}},
		{Kind: enroll.NoticeExpiring, Account: jid.MustParse("bob@example.org"),
			Old: &storage.Cert{Name: "pc", NotAfter: fixedNow().Add(time.Hour)}},
	}}
	e.comp.enroll = fe
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.comp.RunRenewal(ctx, 50*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	for _, want := range []struct{ to, text string }{
		{"alice@example.org", "Fetch my latest certificate"},
		{"bob@example.org", "Request a certificate"},
	} {
		n := e.fc.expect(t)
		if n.XMLName.Local != "message" || n.attr("to") != want.to || n.attr("from") != compJID || n.attr("type") != "normal" ||
			!strings.Contains(n.path("body").Text, want.text) || n.path("subject") == nil {
			t.Fatalf("want a message to %s mentioning %q, got %s", want.to, want.text, n)
		}
	}
	e.fc.expectNone(t, 200*time.Millisecond)
}

// panickySweeps panics in its first sweep, then returns notices.
type panickySweeps struct{ fakeEnrollment }

func (p *panickySweeps) Sweep(ctx context.Context) ([]enroll.Notice, error) {
	p.mu.Lock()
	first := p.sweeps == 0
	p.mu.Unlock()
	if first {
		p.mu.Lock()
		p.sweeps++
		p.mu.Unlock()
		panic("boom")
	}
	return p.fakeEnrollment.Sweep(ctx)
}

// A sweep that panics neither takes the process down nor stops the
// renewals: the next sweep runs and its notices go out.
func TestRunRenewalSurvivesAPanic(t *testing.T) {
	e := startEnv(t, nil)
	fe := &panickySweeps{fakeEnrollment{notices: []enroll.Notice{
		{Kind: enroll.NoticeExpiring, Account: jid.MustParse("bob@example.org"),
			Old: &storage.Cert{Name: "pc", NotAfter: fixedNow().Add(time.Hour)}},
	}}}
	e.comp.enroll = fe
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.comp.RunRenewal(ctx, 50*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()
	if n := e.fc.expect(t); n.XMLName.Local != "message" || n.attr("to") != "bob@example.org" {
		t.Fatalf("want the notice of the second sweep, got %s", n)
	}
	if !strings.Contains(e.log.String(), "panic in the renewal sweep") {
		t.Error("the panic was not logged")
	}
}

// The enrollment commands' names, as the tests use them (package
// enrollcmd).
const (
	NSCommands            = enrollcmd.NSCommands
	NSDataForms           = enrollcmd.NSDataForms
	NodeEnroll            = enrollcmd.NodeEnroll
	NodeLatest            = enrollcmd.NodeLatest
	FormType              = enrollcmd.FormType
	FieldCSR              = enrollcmd.FieldCSR
	FieldSelfSigned       = enrollcmd.FieldSelfSigned
	FieldName             = enrollcmd.FieldName
	FieldNoCertManagement = enrollcmd.FieldNoCertManagement
	FieldChain            = enrollcmd.FieldChain
	FieldFingerprint      = enrollcmd.FieldFingerprint
	FieldSerial           = enrollcmd.FieldSerial
	FieldNotBefore        = enrollcmd.FieldNotBefore
	FieldNotAfter         = enrollcmd.FieldNotAfter
)

// rawForm is a submitted form whose fields are given as raw XML.
func rawForm(fields ...string) string { return xmpptest.SubmitForm(FormType, fields...) }

// fieldXML is <field var=v> with one <value/> per value.
var fieldXML = xmpptest.FieldXML

// TestAdhocFormFailsClosed: through the component, a form the client may
// have meant otherwise is modify/bad-request naming the field, issues
// nothing and leaves the command session usable; a valid one issues.
func TestAdhocFormFailsClosed(t *testing.T) {
	e, _ := startEnrollEnv(t, nil)
	csr := func() string { return fieldXML(FieldCSR, strings.Split(csrText(t, catest.CSROptions{}), "\n")...) }
	for i, tc := range []struct {
		name, form, field string
	}{
		{"TRUE", rawForm(csr(), fieldXML(FieldNoCertManagement, "TRUE")), FieldNoCertManagement},
		{"0-then-1", rawForm(csr(), fieldXML(FieldNoCertManagement, "0"), fieldXML(FieldNoCertManagement, "1")), FieldNoCertManagement},
		{"csr-twice", rawForm(csr(), csr()), FieldCSR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := e.fc.roundTrip(t, command(fmt.Sprint("s", i), aliceFull, NodeEnroll, "execute", "", ""))
			sid := n.child(NSCommands, "command").attr("sessionid")
			before := len(e.activeCerts(t, "alice@example.org"))
			id := fmt.Sprint("f", i)
			n = e.fc.roundTrip(t, command(id, aliceFull, NodeEnroll, "complete", sid, tc.form))
			el := checkError(t, n, id, "modify", "bad-request")
			if el.child(NSCommands, "bad-payload") == nil || !strings.Contains(el.path("text").Text, `"`+tc.field+`"`) {
				t.Fatalf("want bad-payload naming %q: %s", tc.field, n)
			}
			if got := len(e.activeCerts(t, "alice@example.org")); got != before {
				t.Fatalf("a refused form issued %d certificate(s)", got-before)
			}
			// The session was not used up by the refused form.
			n = e.fc.roundTrip(t, command(id+"-ok", aliceFull, NodeEnroll, "complete", sid,
				rawForm(csr(), fieldXML(FieldName, tc.name), fieldXML(FieldNoCertManagement, "true"))))
			checkResult(t, n, id+"-ok", aliceFull)
		})
	}
	for _, c := range e.activeCerts(t, "alice@example.org") {
		if !c.NoCertManagement {
			t.Errorf("%q was issued without no-cert-management", c.Name)
		}
	}
}
