package enrolle2e

import (
	"bytes"
	"context"
	"encoding/xml"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

// clock is a clock that tests move forward.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// message is a <message/> a client received.
type message struct {
	From    string `xml:"from,attr"`
	Type    string `xml:"type,attr"`
	Subject string `xml:"subject"`
	Body    string `xml:"body"`
}

// messageClient is a password session that has sent its presence (so that
// messages to its bare JID reach it) and collects the messages it gets.
type messageClient struct {
	*xmpp.Session
	msgs chan message
}

func (st *stack) messageClient(t *testing.T, user string) *messageClient {
	t.Helper()
	me := st.Register(t, user)
	pw := st.Password(user)
	ctx, cancel := deadline()
	defer cancel()
	s, err := st.S.DialClient(ctx, me, xmpp.StartTLS(st.S.TLSConfig()), xmpp.SASL("", pw, msasl.Plain), xmpp.BindResource())
	if err != nil {
		t.Fatalf("password login as %s: %v", me, err)
	}
	mc := &messageClient{Session: s, msgs: make(chan message, 16)}
	go func() {
		_ = s.Serve(xmpp.HandlerFunc(func(r xmlstream.TokenReadEncoder, start *xml.StartElement) error {
			if start.Name.Local != "message" {
				return nil
			}
			var m message
			if err := xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start.Copy()), r)).Decode(&m); err == nil {
				mc.msgs <- m
			}
			return nil
		}))
	}()
	t.Cleanup(func() {
		_ = s.Close()
		_ = s.Conn().Close()
	})
	if err := s.Send(ctx, stanza.Presence{}.Wrap(nil)); err != nil {
		t.Fatal(err)
	}
	return mc
}

// renewalStack is a real Prosody with the component run in process (as
// serve wires it) with the embedded CA, enrollment and a renewal sweep
// every 100 ms, on a clock the test moves forward.
type renewalStack struct {
	*stack
	clk     *clock
	ca      *localca.CA
	db      *sqlite.DB
	compJID jid.JID
}

// lifetime is the lifetime of certificates issued by a renewalStack.
const lifetime = 3 * time.Hour

func newRenewalStack(t *testing.T) *renewalStack {
	t.Helper()
	st := newStack(t)
	clk := &clock{}
	caDir := filepath.Join(st.Dir, "ca")
	if err := localca.Init(caDir, localca.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(caDir, localca.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	buf := new(stacktest.LogBuffer)
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() || os.Getenv(stacktest.LogEnv) != "" {
			t.Logf("component log:\n%s", buf.String())
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	db, err := sqlite.Open(ctx, filepath.Join(st.Dir, "saslcert.db"), sqlite.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	compJID := jid.MustParse(st.S.ComponentJID)
	var comp *component.Component
	store := storage.Observe(db, func(ctx context.Context, account string) { comp.NotifyChanged(ctx, account) })
	svc, err := enroll.NewService(enroll.ServiceConfig{
		Store:       store,
		Issuers:     map[string]enroll.Issuer{enroll.EmbeddedIssuer: ca},
		Policies:    enroll.Policies{st.S.Domain: {Issuer: enroll.EmbeddedIssuer, Lifetime: lifetime, AllowSelfSigned: true}},
		RenewBefore: enroll.DefaultRenewBefore,
		Component:   compJID,
		Now:         clk.now,
		Logger:      log.With("part", "enroll"),
	})
	if err != nil {
		t.Fatal(err)
	}
	certs := &xep0257.Handler{Store: store, Now: clk.now, Logger: log.With("part", "xep0257"), CheckAppend: svc.CheckAppend}
	auth := &sasl.Authorizer{Store: db, Now: clk.now, Policy: sasl.Policy{ClockSkew: 5 * time.Minute}, Trusted: svc.Trusted, IsRevoked: svc.IsRevoked,
		IssuerRevoked: svc.IssuerRevoked}
	certs.Revoked = func(ctx context.Context, c *storage.Cert) {
		comp.NotifyRevoked(ctx, c)
		_ = svc.RevokeAtCA(ctx, c)
	}
	comp, err = component.New(component.Config{
		Addr:           st.S.ComponentAddr,
		JID:            compJID,
		Secret:         []byte(st.S.ComponentSecret),
		ServerDomains:  []string{st.S.Domain},
		RequestTimeout: 15 * time.Second,
		CacheTTL:       time.Minute,
		Logger:         log.With("part", "component"),
		Now:            clk.now,
	}, certs, auth)
	if err != nil {
		t.Fatal(err)
	}
	comp.EnableEnrollment(svc)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); _ = comp.Run(ctx) }()
	go func() { defer wg.Done(); comp.RunRenewal(ctx, 100*time.Millisecond) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		db.Close()
	})
	select {
	case <-comp.Connected():
	case <-time.After(eventTimeout):
		t.Fatal("the component did not connect")
	}

	return &renewalStack{stack: st, clk: clk, ca: ca, db: db, compJID: compJID}
}

// TestEnrollRenewal runs the component in process (as serve wires it) with
// a clock the test moves forward: a certificate requested with the ad-hoc
// command is renewed for the same key once a third of its lifetime is left;
// the user gets a <message/> saying so and fetches the new certificate with
// "Fetch my latest certificate"; it logs in; once the old one has expired it
// is disabled and no longer listed.
func TestEnrollRenewal(t *testing.T) {
	rs := newRenewalStack(t)
	st, clk, ca, db, compJID := rs.stack, rs.clk, rs.ca, rs.db, rs.compJID
	ctx := context.Background()
	erin := st.Register(t, "erin")
	mc := st.messageClient(t, "erin")
	key := newKey(t)
	res, err := requestCert(t, mc.Session, compJID, map[string]string{component.FieldCSR: csrPEM(t, key, "", ""), component.FieldName: "tablet"})
	if err != nil {
		t.Fatalf("Request a certificate: %v", err)
	}
	text, _ := res.Form.value(component.FieldChain)
	first := pemChain(t, text)
	old := checkIssued(t, first, erin, key, lifetime, ca.Cert(), ca.Root(), clk.now())

	// An hour and 55 minutes later, a third of the lifetime (about an hour)
	// is not yet left: nothing happens. Ten minutes more, and it is.
	clk.advance(115 * time.Minute)
	select {
	case m := <-mc.msgs:
		t.Fatalf("a message before the certificate is due: %+v", m)
	case <-time.After(500 * time.Millisecond):
	}
	clk.advance(10 * time.Minute)
	var m message
	select {
	case m = <-mc.msgs:
	case <-time.After(eventTimeout):
		t.Fatal("no message about the renewal")
	}
	t.Logf("message from %s: subject %q\n    %s", m.From, m.Subject, m.Body)
	if m.From != compJID.String() || !strings.Contains(m.Body, "Fetch my latest certificate") || !strings.Contains(m.Body, "tablet") {
		t.Fatalf("message %+v; want one from %s naming the certificate and how to fetch the new one", m, compJID)
	}

	latest := fetchLatest(t, mc.Session, compJID)
	text, _ = latest.Form.value(component.FieldChain)
	renewed := pemChain(t, text)
	name, _ := latest.Form.value(component.FieldName)
	t.Logf("Fetch my latest certificate: %q", name)
	leaf := checkIssued(t, renewed, erin, key, lifetime, ca.Cert(), ca.Root(), clk.now())
	switch {
	case bytes.Equal(renewed[0], first[0]):
		t.Fatal("the latest certificate is the old one")
	case !leaf.NotAfter.After(old.NotAfter):
		t.Fatalf("the renewed certificate expires %s, not after the old one (%s)", leaf.NotAfter, old.NotAfter)
	case !strings.HasPrefix(name, "tablet (renewed "):
		t.Fatalf("renewed name %q", name)
	}
	rec, err := db.FindCertByFingerprint(ctx, storage.FingerprintOf(renewed[0]))
	if err != nil || rec.Source != storage.SourceEnrolled {
		t.Fatalf("renewed record: %+v, %v", rec, err)
	}
	ext, err := st.certLogin(t, erin, tlsCert(renewed, key))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the renewed certificate: %v", err)
	}
	t.Logf("SASL EXTERNAL with the renewed certificate: bound as %s", ext.LocalAddr())
	ext.Close()
	select {
	case m := <-mc.msgs:
		t.Fatalf("a second message for the same renewal: %+v", m)
	case <-time.After(500 * time.Millisecond):
	}

	// Once the old certificate has expired, it is disabled (it no longer
	// counts against the limit) and is no longer listed.
	clk.advance(time.Hour)
	deadline := time.After(eventTimeout)
	for {
		qctx, qcancel := context.WithTimeout(ctx, stepTimeout)
		items, err := xep0257.Fetch(qctx, mc.Session, jid.JID{})
		qcancel()
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, len(items))
		for i, it := range items {
			names[i] = it.Name
		}
		if !slices.Contains(names, "tablet") {
			t.Logf("after the old certificate expired, XEP-0257 lists %q", names)
			break
		}
		select {
		case <-deadline:
			t.Fatalf("the expired predecessor is still listed: %q", names)
		case <-time.After(100 * time.Millisecond):
		}
	}
	oldRec, err := db.FindCertByFingerprint(ctx, storage.FingerprintOf(first[0]))
	if err != nil || oldRec.State != storage.StateDisabled {
		t.Fatalf("old record: %+v, %v; want disabled", oldRec, err)
	}
}
