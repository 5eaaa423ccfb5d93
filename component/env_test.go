package component

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

const (
	testSecret = "s3cret"
	compJID    = "certs.example.org"
	domain     = "example.org"
)

func fixedNow() time.Time { return certtest.Now }

// syncBuffer collects log output; it is printed if the test fails (or
// SASLCERT_TEST_LOG is set).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	t.Helper()
	buf := new(syncBuffer)
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("SASLCERT_TEST_LOG") != "" {
			t.Logf("component log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func testConfig(t *testing.T, addr string) (Config, *syncBuffer) {
	log, buf := testLogger(t)
	return Config{
		Addr:           addr,
		JID:            jid.MustParse(compJID),
		Secret:         []byte(testSecret),
		ServerDomains:  []string{domain},
		RequestTimeout: 2 * time.Second,
		PingInterval:   time.Hour,
		MinBackoff:     10 * time.Millisecond,
		MaxBackoff:     100 * time.Millisecond,
		Logger:         log,
		Now:            fixedNow,
	}, buf
}

// env is a component with a real SQLite store, xep0257.Handler and
// sasl.Authorizer, connected to a fake server.
type env struct {
	srv   *fakeServer
	fc    *fakeConn // the first connection
	comp  *Component
	db    *sqlite.DB
	certs *xep0257.Handler
	log   *syncBuffer
	stop  func() error // cancels Run and returns its error
}

// startEnv starts a component; mutate may change the config first.
func startEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	return startEnvStore(t, mutate, false)
}

// startEnvStore is startEnv; with observe, the handler's store is the
// life-cycle owner (lifecycle.Manager) with NotifyChanged and NotifyRevoked
// as its effects, as package server wires it.
func startEnvStore(t *testing.T, mutate func(*Config), observe bool) *env {
	t.Helper()
	return startEnvWrapped(t, mutate, observe, nil)
}

// startEnvWrapped is startEnvStore with the handler's store wrapped by wrap
// (if set) inside the life-cycle owner, e.g. to make writes slow.
func startEnvWrapped(t *testing.T, mutate func(*Config), observe bool, wrap func(storage.Store) storage.Store) *env {
	t.Helper()
	srv := newFakeServer(t, testSecret)
	cfg, buf := testConfig(t, srv.addr())
	if mutate != nil {
		mutate(&cfg)
	}
	db := sqlitetest.Open(t, sqlite.Options{Now: fixedNow})
	var comp *Component
	var store storage.Store = db
	if wrap != nil {
		store = wrap(store)
	}
	var mgr *lifecycle.Manager
	if observe {
		mgr = lifecycle.New(store, cfg.Logger)
		store = mgr
	}
	certs := &xep0257.Handler{Store: store, Now: fixedNow, Logger: cfg.Logger}
	auth := &sasl.Authorizer{Store: db, Now: fixedNow}
	comp, err := New(cfg, certs, auth)
	if err != nil {
		t.Fatal(err)
	}
	if mgr != nil {
		mgr.Register(lifecycle.Effects{
			Changed: func(ctx context.Context, account string) { _ = comp.NotifyChanged(ctx, account) },
			Revoked: comp.NotifyRevoked,
		})
	}
	wire(comp, certs)
	e := &env{srv: srv, comp: comp, db: db, certs: certs, log: buf}
	e.stop = run(t, comp)
	e.fc = srv.next(t)
	waitConnected(t, comp)
	return e
}

// wire connects certs to comp as package server does without a life-cycle
// owner: <items/> lists the registry's live sessions, and a revoke closes
// the certificate's sessions (unless the store's life-cycle owner does).
func wire(comp *Component, certs *xep0257.Handler) {
	certs.Sessions = comp.Sessions()
	if _, managed := certs.Store.(*lifecycle.Manager); !managed && certs.Revoked == nil {
		certs.Revoked = comp.NotifyRevoked
	}
}

// startFakeEnv starts a component with fake services (for fault injection).
func startFakeEnv(t *testing.T, mutate func(*Config), certs certService, auth authService) *env {
	t.Helper()
	srv := newFakeServer(t, testSecret)
	cfg, buf := testConfig(t, srv.addr())
	if mutate != nil {
		mutate(&cfg)
	}
	comp, err := newComponent(cfg, certs, auth)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{srv: srv, comp: comp, log: buf}
	e.stop = run(t, comp)
	e.fc = srv.next(t)
	waitConnected(t, comp)
	return e
}

// run runs comp until the returned stop is called (or the test ends).
func run(t *testing.T, comp *Component) func() error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- comp.Run(ctx) }()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				err = fmt.Errorf("Run did not return within 20 s of the cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return stop
}

func waitConnected(t *testing.T, comp *Component) {
	t.Helper()
	select {
	case <-comp.Connected():
	case <-time.After(10 * time.Second):
		t.Fatal("the component did not connect")
	}
}

// newCert makes a certificate for the bare JID account.
func newCert(t *testing.T, account string) *certtest.Cert {
	t.Helper()
	return certtest.New(t, certtest.Options{XMPPAddrs: []string{account}})
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

func appendXML(name string, der []byte, noCertManagement bool) string {
	flag := ""
	if noCertManagement {
		flag = "<no-cert-management/>"
	}
	return fmt.Sprintf("<append xmlns='urn:xmpp:saslcert:1'><name>%s</name><x509cert>%s</x509cert>%s</append>", name, b64(der), flag)
}

const itemsXML = "<items xmlns='urn:xmpp:saslcert:1'/>"

func revokeXML(name string) string {
	return "<revoke xmlns='urn:xmpp:saslcert:1'><name>" + name + "</name></revoke>"
}

// direct is an IQ a user addressed to the component, as the server plugin
// passes it on: a set carries the stamp of a password login (passwordStamp).
func direct(id, typ, from, payload string) string {
	if typ == "set" {
		payload += passwordStamp(from, id)
	}
	return directRaw(id, typ, from, payload)
}

// directRaw is an IQ a user addressed to the component, without a stamp
// (payload may carry one).
func directRaw(id, typ, from, payload string) string {
	return fmt.Sprintf("<iq type='%s' id='%s' from='%s' to='%s'>%s</iq>", typ, id, from, compJID, payload)
}

// stampXML is the auth stamp the server plugin puts after a request's
// payload, with a MAC under testSecret.
func stampXML(from, id, method, fingerprint, manage string) string {
	mac := pluginproto.StampMAC([]byte(testSecret), from, id, method, fingerprint, manage)
	fp := ""
	if fingerprint != "" {
		fp = " fingerprint='" + fingerprint + "'"
	}
	return fmt.Sprintf("<auth xmlns='%s' jid='%s' id='%s' method='%s'%s manage='%s' mac='%s'/>", NSPlugin, from, id, method, fp, manage, mac)
}

// passwordStamp is the stamp of a password login of from, for the request id.
func passwordStamp(from, id string) string {
	return stampXML(from, id, string(pluginproto.MethodOther), "", "true")
}

// certStamp is the stamp of a certificate login of from with der.
func certStamp(from, id string, der []byte, manage bool) string {
	return stampXML(from, id, string(pluginproto.MethodCertificate), storage.FingerprintOf(der).String(), fmt.Sprint(manage))
}

// innerAttr finds name='value' in raw attributes.
var innerAttr = regexp.MustCompile(`(?:^|\s)(from|id|type)='([^']*)'`)

// delegation wraps an inner IQ (its attributes given raw) as mod_delegation
// does; an inner set with a from and an id carries the stamp of a password
// login, as the server plugin puts it there before the request is wrapped.
func delegation(id, outerFrom, innerAttrs, payload string) string {
	attrs := map[string]string{}
	for _, m := range innerAttr.FindAllStringSubmatch(innerAttrs, -1) {
		attrs[m[1]] = m[2]
	}
	if attrs["type"] == "set" && attrs["from"] != "" && attrs["id"] != "" {
		payload += passwordStamp(attrs["from"], attrs["id"])
	}
	return delegationRaw(id, outerFrom, innerAttrs, payload)
}

// delegationRaw is delegation without a stamp (payload may carry one).
func delegationRaw(id, outerFrom, innerAttrs, payload string) string {
	return fmt.Sprintf("<iq type='set' id='%s' from='%s' to='%s'><delegation xmlns='urn:xmpp:delegation:2'><forwarded xmlns='urn:xmpp:forward:0'>"+
		"<iq xmlns='jabber:client' %s>%s</iq></forwarded></delegation></iq>", id, outerFrom, compJID, innerAttrs, payload)
}

// pluginIQ is an IQ of the plugin protocol.
func pluginIQ(id, typ, from, payload string) string {
	return fmt.Sprintf("<iq type='%s' id='%s' from='%s' to='%s'>%s</iq>", typ, id, from, compJID, payload)
}

func lookupXML(authzid string, der []byte) string {
	a := ""
	if authzid != "" {
		a = " authzid='" + authzid + "'"
	}
	return fmt.Sprintf("<lookup xmlns='%s'%s><x509cert>%s</x509cert></lookup>", NSPlugin, a, b64(der))
}

func sessionXML(event, full string, fp storage.Fingerprint) string {
	return fmt.Sprintf("<session xmlns='%s' event='%s' jid='%s' fingerprint='%s'/>", NSPlugin, event, full, fp)
}

// checkResult fails unless n is a result IQ with id, addressed from the
// component to to.
func checkResult(t *testing.T, n *node, id, to string) {
	t.Helper()
	if n.XMLName.Local != "iq" || n.attr("type") != "result" || n.attr("id") != id || n.attr("to") != to || n.attr("from") != compJID {
		t.Fatalf("want a result to %s with id %s from %s, got %s", to, id, compJID, n)
	}
}

// checkError fails unless n is an error IQ with id and the given type and
// condition, and returns its <error/>.
func checkError(t *testing.T, n *node, id, typ, cond string) *node {
	t.Helper()
	if n.XMLName.Local != "iq" || n.attr("type") != "error" || n.attr("id") != id {
		t.Fatalf("want an error IQ with id %s, got %s", id, n)
	}
	return checkErrorChild(t, n, typ, cond)
}

func checkErrorChild(t *testing.T, n *node, typ, cond string) *node {
	t.Helper()
	e := n.child("", "error")
	if e == nil || e.attr("type") != typ || e.child("urn:ietf:params:xml:ns:xmpp-stanzas", cond) == nil {
		t.Fatalf("want <error type='%s'><%s/></error>, got %s", typ, cond, n)
	}
	return e
}

// activeCerts lists the account's active certificates in the store.
func (e *env) activeCerts(t *testing.T, account string) []*storage.Cert {
	t.Helper()
	list, err := e.db.ListCerts(context.Background(), account, storage.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// appendDirect stores der for account through the component.
func (e *env) appendDirect(t *testing.T, full, name string, der []byte, noCertManagement bool) {
	t.Helper()
	n := e.fc.roundTrip(t, direct("ap-"+name, "set", full, appendXML(name, der, noCertManagement)))
	checkResult(t, n, "ap-"+name, full)
}
