package xep0257_test

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/xep0257"
)

var (
	alice    = jid.MustParse("alice@example.org/phone")
	aliceBot = jid.MustParse("alice@example.org/bot")
	bob      = jid.MustParse("bob@example.org/laptop")
)

func now() time.Time { return certtest.Now }

// openStore opens a fresh SQLite store in a temporary directory.
func openStore(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(tb.TempDir(), "certs.db"), sqlite.Options{Now: now})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := db.Close(); err != nil {
			tb.Error(err)
		}
	})
	return db
}

// testLogger logs to the test's output at Debug.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newHandler returns a handler on store with the test clock.
func newHandler(t *testing.T, store storage.Store) *xep0257.Handler {
	return &xep0257.Handler{Store: store, Now: now, Logger: testLogger(t)}
}

// certFor makes a certificate naming the JIDs addrs.
func certFor(tb testing.TB, addrs ...string) []byte {
	tb.Helper()
	return certtest.New(tb, certtest.Options{XMPPAddrs: addrs}).DER
}

// mustAppend stores der for from under name through h.
func mustAppend(t *testing.T, h *xep0257.Handler, from jid.JID, name string, der []byte, noMgmt bool) {
	t.Helper()
	_, err := h.Process(t.Context(), from, authOf(h, from), &xep0257.Append{Name: name, Cert: der, NoCertManagement: noMgmt})
	if err != nil {
		t.Fatalf("append %q: %v", name, err)
	}
}

// encode returns the XML of the tokens of r.
func encode(tb testing.TB, r xml.TokenReader) string {
	tb.Helper()
	if r == nil {
		return ""
	}
	var b strings.Builder
	e := xml.NewEncoder(&b)
	if _, err := xmlstream.Copy(e, r); err != nil {
		tb.Fatal(err)
	}
	if err := e.Flush(); err != nil {
		tb.Fatal(err)
	}
	return b.String()
}

// wantErr is the expected stanza error: type, condition and a substring of
// its text.
type wantErr struct {
	typ  stanza.ErrorType
	cond stanza.Condition
	text string
}

func (w wantErr) String() string { return fmt.Sprintf("%s/%s %q", w.typ, w.cond, w.text) }

// checkErr fails t unless err is the stanza.Error w describes (or nil when w
// is zero).
func checkErr(t *testing.T, err error, w wantErr) {
	t.Helper()
	if w == (wantErr{}) {
		if err != nil {
			t.Fatalf("unexpected error: %#v", err)
		}
		return
	}
	var se stanza.Error
	if !errors.As(err, &se) {
		t.Fatalf("error = %#v, want a stanza.Error %s", err, w)
	}
	if se.Type != w.typ || se.Condition != w.cond || !strings.Contains(se.Text[""], w.text) {
		t.Fatalf("error = %s/%s %q, want %s", se.Type, se.Condition, se.Text[""], w)
	}
	if se.Text[""] == "" {
		t.Errorf("error %s/%s has no text", se.Type, se.Condition)
	}
}

func b64(der []byte) string { return base64.StdEncoding.EncodeToString(der) }

// wrap64 returns s in lines of n characters, each indented, as the XEP
// example presents base64.
func wrap64(s string, n int) string {
	var b strings.Builder
	b.WriteString("\n")
	for len(s) > n {
		b.WriteString("      " + s[:n] + "\n")
		s = s[n:]
	}
	b.WriteString("      " + s + "\n    ")
	return b.String()
}

// fakeSessions is injected session data: which full JID logged in with which
// certificate.
type fakeSessions struct {
	mu    sync.Mutex
	certs map[string]storage.Fingerprint // full JID -> fingerprint
}

func (s *fakeSessions) login(full jid.JID, der []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.certs == nil {
		s.certs = map[string]storage.Fingerprint{}
	}
	s.certs[full.String()] = storage.FingerprintOf(der)
}

func (s *fakeSessions) logout(full jid.JID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.certs, full.String())
}

func (s *fakeSessions) CertOf(full jid.JID) (storage.Fingerprint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fp, ok := s.certs[full.String()]
	return fp, ok
}

// auth is what a server would vouch for about full: a certificate login
// (whose grant allows management: the record decides) if full logged in
// with one, else a password login.
func (s *fakeSessions) auth(full jid.JID) xep0257.Auth {
	if fp, ok := s.CertOf(full); ok {
		return xep0257.Auth{Vouched: true, Certificate: true, Fingerprint: fp, Manage: true}
	}
	return passwordAuth
}

// passwordAuth is a password login the server vouched for.
var passwordAuth = xep0257.Auth{Vouched: true, Manage: true}

// authOf is what h's SessionAuth says about from, or passwordAuth.
func authOf(h *xep0257.Handler, from jid.JID) xep0257.Auth {
	if h.SessionAuth != nil {
		return h.SessionAuth(from)
	}
	return passwordAuth
}

func (s *fakeSessions) Resources(account jid.JID, fp storage.Fingerprint) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var res []string
	for full, f := range s.certs {
		j := jid.MustParse(full)
		if f == fp && j.Bare().Equal(account.Bare()) {
			res = append(res, j.Resourcepart())
		}
	}
	return res
}

// faultyStore wraps a Store and makes the methods named in fail return
// storage.ErrUnavailable without calling through.
type faultyStore struct {
	storage.Store
	fail map[string]bool
}

func (s faultyStore) err(op string) error {
	if s.fail[op] {
		return fmt.Errorf("faulty store: %s: database is locked: %w", op, storage.ErrUnavailable)
	}
	return nil
}

func (s faultyStore) AddCert(ctx context.Context, c *storage.Cert, o storage.AddOptions) error {
	if err := s.err("AddCert"); err != nil {
		return err
	}
	return s.Store.AddCert(ctx, c, o)
}

func (s faultyStore) FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
	if err := s.err("FindCertByFingerprint"); err != nil {
		return nil, err
	}
	return s.Store.FindCertByFingerprint(ctx, fp)
}

func (s faultyStore) ListCerts(ctx context.Context, account string, states ...storage.State) ([]*storage.Cert, error) {
	if err := s.err("ListCerts"); err != nil {
		return nil, err
	}
	return s.Store.ListCerts(ctx, account, states...)
}

func (s faultyStore) SetState(ctx context.Context, account, name string, to storage.State, actor string) (*storage.Cert, error) {
	if err := s.err("SetState"); err != nil {
		return nil, err
	}
	return s.Store.SetState(ctx, account, name, to, actor)
}

func (s faultyStore) RevokeKey(ctx context.Context, account, name, actor string) ([]*storage.Cert, error) {
	if err := s.err("RevokeKey"); err != nil {
		return nil, err
	}
	return s.Store.RevokeKey(ctx, account, name, actor)
}
