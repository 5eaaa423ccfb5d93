package enroll_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
)

var (
	svcAlice = jid.MustParse("alice@example.org")
	svcBob   = jid.MustParse("bob@example.net")
)

// svcClock is a settable clock.
type svcClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *svcClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *svcClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// countingIssuer wraps an Issuer, counting Issue calls; with noRenew it
// refuses renewals as external CAs do.
type countingIssuer struct {
	enroll.Issuer
	mu      sync.Mutex
	issues  int
	noRenew bool
}

func (c *countingIssuer) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	c.mu.Lock()
	c.issues++
	c.mu.Unlock()
	if c.noRenew && req.Renew != nil {
		return nil, fmt.Errorf("%w: no renewals here", enroll.ErrNotSupported)
	}
	return c.Issuer.Issue(ctx, req)
}

// CheckRevocation and Cert pass through to the wrapped embedded CA.
func (c *countingIssuer) CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) (bool, bool, error) {
	return c.Issuer.(enroll.RevocationChecker).CheckRevocation(ctx, cert, issuer)
}

func (c *countingIssuer) Cert() *x509.Certificate { return c.Issuer.(*localca.CA).Cert() }

func (c *countingIssuer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.issues
}

// svcFixture is a Service on a SQLite store with the embedded CA (also as
// "norenew", which cannot renew) for example.org, and example.net accepting
// only certificates of org (trusted root, CRL at crlURL if set).
type svcFixture struct {
	svc   *enroll.Service
	db    *sqlite.DB
	ca    *localca.CA
	iss   *countingIssuer
	clk   *svcClock
	org   *certtest.Cert
	store storage.Store // what the service uses (db unless replaced)
}

func newSvcFixture(t *testing.T, mutate func(*enroll.ServiceConfig, *svcFixture)) *svcFixture {
	t.Helper()
	f := &svcFixture{clk: &svcClock{t: certtest.Now}, org: certtest.NewCA(t, "org root")}
	dir := filepath.Join(t.TempDir(), "ca")
	if err := localca.Init(dir, localca.InitOptions{Now: f.clk.Now}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.ca = ca
	f.iss = &countingIssuer{Issuer: ca}
	f.db = sqlitetest.Open(t, sqlite.Options{Now: f.clk.Now})
	f.store = f.db
	cfg := enroll.ServiceConfig{
		Issuers: map[string]enroll.Issuer{enroll.EmbeddedIssuer: f.iss, "norenew": &countingIssuer{Issuer: ca, noRenew: true}},
		Policies: enroll.Policies{
			"example.org": {Issuer: enroll.EmbeddedIssuer, Lifetime: 3 * time.Hour, AllowSelfSigned: true},
			"example.net": {TrustedRoots: []*x509.Certificate{f.org.Cert}},
		},
		RenewBefore: enroll.DefaultRenewBefore,
		Component:   jid.MustParse("certs.example.org"),
		Now:         f.clk.Now,
	}
	if mutate != nil {
		mutate(&cfg, f)
	}
	if cfg.Store == nil {
		cfg.Store = f.store
	}
	svc, err := enroll.NewService(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	return f
}

func (f *svcFixture) enroll(t *testing.T, name string, key ...any) *enroll.Enrolled {
	t.Helper()
	o := catest.CSROptions{}
	if len(key) > 0 {
		o.Key = certtest.Key(t, key[0].(certtest.KeyType))
	}
	res, err := f.svc.Enroll(context.Background(), &enroll.EnrollRequest{Account: svcAlice, Actor: "alice@example.org/x", Name: name, CSR: catest.NewCSR(t, o)})
	if err != nil {
		t.Fatalf("Enroll %q: %v", name, err)
	}
	return res
}

func (f *svcFixture) active(t *testing.T, account jid.JID) []*storage.Cert {
	t.Helper()
	list, err := f.db.ListCerts(context.Background(), account.String(), storage.StateActive)
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func TestEnrollServiceEnroll(t *testing.T) {
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, _ *svcFixture) { c.MaxPerAccount = 4 })
	ctx := context.Background()
	res := f.enroll(t, "laptop")
	r := res.Record
	if r.Source != storage.SourceEnrolled || r.Account != svcAlice.String() || r.Name != "laptop" || r.State != storage.StateActive || r.ID == 0 {
		t.Fatalf("record %+v", r)
	}
	if len(res.Chain) != 2 || !bytes.Equal(res.Chain[1], f.ca.Cert().Raw) || !bytes.Equal(res.Chain[0], r.DER) {
		t.Fatalf("chain of %d certificates; want the certificate and the issuing CA", len(res.Chain))
	}
	if got := r.NotAfter.Sub(r.NotBefore); got != 3*time.Hour+time.Minute {
		t.Fatalf("valid for %s; want the policy's 3h (+1m back-dating)", got)
	}
	audit, err := f.db.Audit(ctx, svcAlice.String(), 1)
	if err != nil || len(audit) != 1 || audit[0].Actor != "alice@example.org/x" || audit[0].Action != storage.ActionAdd {
		t.Fatalf("audit %+v, %v", audit, err)
	}

	// A self-signed upload's key.
	ss := certtest.New(t, certtest.Options{XMPPAddrs: []string{svcAlice.String()}, KeyType: certtest.Ed25519})
	up, err := sasl.CheckUpload(ss.DER, svcAlice, f.clk.Now(), sasl.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.AddCert(ctx, up.Record("ss", false, storage.SourceUpload), storage.AddOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	res, err = f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: svcAlice, SelfSignedName: "ss"})
	if err != nil {
		t.Fatalf("Enroll from an upload: %v", err)
	}
	if !strings.HasPrefix(res.Record.Name, "CA-issued ") {
		t.Errorf("default name %q", res.Record.Name)
	}
	leaf, _ := x509.ParseCertificate(res.Chain[0])
	if !bytes.Equal(leaf.RawSubjectPublicKeyInfo, ss.Cert.RawSubjectPublicKeyInfo) {
		t.Fatal("the issued certificate certifies another key than the upload's")
	}

	// Refusals: nothing is issued and nothing stored.
	csr := catest.NewCSR(t, catest.CSROptions{})
	tests := []struct {
		name   string
		req    enroll.EnrollRequest
		err    error
		issues int // Issue calls expected
	}{
		{"error/name-taken", enroll.EnrollRequest{Account: svcAlice, Name: "laptop", CSR: csr}, storage.ErrNameTaken, 0},
		{"error/bad-name", enroll.EnrollRequest{Account: svcAlice, Name: "a\x07b", CSR: csr}, enroll.ErrBadRequest, 0},
		{"error/long-name", enroll.EnrollRequest{Account: svcAlice, Name: strings.Repeat("n", 65), CSR: csr}, enroll.ErrBadRequest, 0},
		{"error/neither", enroll.EnrollRequest{Account: svcAlice}, enroll.ErrBadRequest, 0},
		{"error/both", enroll.EnrollRequest{Account: svcAlice, CSR: csr, SelfSignedName: "ss"}, enroll.ErrBadRequest, 0},
		{"error/unknown-upload", enroll.EnrollRequest{Account: svcAlice, SelfSignedName: "nope"}, storage.ErrNotFound, 0},
		{"error/other-jid", enroll.EnrollRequest{Account: svcAlice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "mallory@example.org"})}, enroll.ErrBadRequest, 1},
		{"error/not-offered", enroll.EnrollRequest{Account: svcBob, CSR: csr}, enroll.ErrNotOffered, 0},
		{"error/not-served", enroll.EnrollRequest{Account: jid.MustParse("eve@example.com"), CSR: csr}, enroll.ErrNotOffered, 0},
		{"error/full-jid", enroll.EnrollRequest{Account: jid.MustParse("alice@example.org/x"), CSR: csr}, enroll.ErrBadRequest, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.iss.count()
			n := len(f.active(t, svcAlice))
			_, err := f.svc.Enroll(ctx, &tt.req)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got := f.iss.count() - before; got != tt.issues {
				t.Fatalf("Issue called %d times, want %d", got, tt.issues)
			}
			if got := len(f.active(t, svcAlice)); got != n {
				t.Fatalf("%d active certificates, was %d", got, n)
			}
		})
	}

	// At the limit (4: laptop, ss, CA-issued, fourth), nothing is issued.
	f.enroll(t, "fourth")
	before := f.iss.count()
	if _, err := f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: svcAlice, CSR: csr}); !errors.Is(err, storage.ErrLimit) {
		t.Fatalf("over the limit: err = %v", err)
	}
	if f.iss.count() != before {
		t.Fatal("a certificate was issued over the limit")
	}
}

// failingStore refuses every AddCert (the race after the pre-checks).
type failingStore struct{ storage.Store }

func (failingStore) AddCert(context.Context, *storage.Cert, storage.AddOptions) error {
	return fmt.Errorf("%w: taken meanwhile", storage.ErrNameTaken)
}

func TestEnrollServiceRevokesWhatItCannotStore(t *testing.T) {
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, f *svcFixture) { c.Store = failingStore{f.db} })
	_, err := f.svc.Enroll(context.Background(), &enroll.EnrollRequest{Account: svcAlice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if !errors.Is(err, storage.ErrNameTaken) {
		t.Fatalf("err = %v", err)
	}
	revs, err := f.ca.Revocations(context.Background())
	if err != nil || len(revs) != 1 || revs[0].Reason != enroll.ReasonCessationOfOperation {
		t.Fatalf("revocations %+v, %v; want the unstored certificate", revs, err)
	}
}

func TestEnrollServiceLatestAndRevokeAtCA(t *testing.T) {
	f := newSvcFixture(t, nil)
	ctx := context.Background()
	if _, err := f.svc.Latest(ctx, svcAlice); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Latest with none: %v", err)
	}
	first := f.enroll(t, "one")
	f.clk.Add(time.Minute)
	second := f.enroll(t, "two", certtest.ECDSAP384) // another key: a revocation revokes the key
	got, err := f.svc.Latest(ctx, svcAlice)
	if err != nil || got.Record.Fingerprint != second.Record.Fingerprint || len(got.Chain) != 2 || !bytes.Equal(got.Chain[1], f.ca.Cert().Raw) {
		t.Fatalf("Latest: %+v, %v; want %q with its chain", got, err, "two")
	}

	rec, err := f.db.SetState(ctx, svcAlice.String(), "two", storage.StateRevoked, "test")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.svc.RevokeAtCA(ctx, rec); err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(second.Chain[0])
	if revoked, ok, _ := f.ca.CheckRevocation(ctx, leaf, f.ca.Cert()); !ok || !revoked {
		t.Fatal("RevokeAtCA did not revoke at the embedded CA")
	}
	if got, _ := f.svc.Latest(ctx, svcAlice); got.Record.Fingerprint != first.Record.Fingerprint {
		t.Fatal("Latest still gives the revoked certificate")
	}
	// Uploads are not revoked anywhere.
	if err := f.svc.RevokeAtCA(ctx, &storage.Cert{Source: storage.SourceUpload, DER: []byte("x")}); err != nil {
		t.Fatalf("upload: %v", err)
	}
	// A certificate of a CA not configured.
	foreign := certtest.New(t, certtest.Options{Parent: f.org, XMPPAddrs: []string{svcAlice.String()}})
	err = f.svc.RevokeAtCA(ctx, &storage.Cert{Source: storage.SourceEnrolled, DER: foreign.DER, Account: svcAlice.String()})
	if !errors.Is(err, enroll.ErrNotSupported) {
		t.Fatalf("foreign CA: err = %v, want ErrNotSupported", err)
	}
}

func TestEnrollServiceIsRevoked(t *testing.T) {
	now := certtest.Now
	srv := newCRLServer(t)
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, f *svcFixture) {
		p := c.Policies["example.net"]
		p.CRLURLs = []string{srv.url}
		c.Policies["example.net"] = p
		c.CRLMaxAge = -1
	})
	ctx := context.Background()
	orgLeaf := certtest.New(t, certtest.Options{Parent: f.org, XMPPAddrs: []string{svcBob.String()}})
	chain := []*x509.Certificate{orgLeaf.Cert, f.org.Cert}
	if _, err := f.svc.IsRevoked(ctx, "example.net", chain); !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("CRL unavailable: err = %v", err)
	}
	srv.set(makeCRL(t, f.org, now, time.Hour))
	if revoked, err := f.svc.IsRevoked(ctx, "example.net", chain); revoked || err != nil {
		t.Fatalf("not revoked: %v %v", revoked, err)
	}
	srv.set(makeCRL(t, f.org, now, time.Hour, orgLeaf.Cert.SerialNumber))
	if revoked, err := f.svc.IsRevoked(ctx, "example.net", chain); !revoked || err != nil {
		t.Fatalf("revoked: %v %v", revoked, err)
	}
	// No source knows the issuer: treated as revoked.
	stranger := certtest.NewCA(t, "stranger")
	sLeaf := certtest.New(t, certtest.Options{Parent: stranger, XMPPAddrs: []string{svcAlice.String()}})
	if revoked, err := f.svc.IsRevoked(ctx, "example.org", []*x509.Certificate{sLeaf.Cert, stranger.Cert}); !revoked || err != nil {
		t.Fatalf("no source: %v %v; want revoked", revoked, err)
	}
	// The embedded CA's own list; and a stored record that is not active.
	local, err := f.ca.Issue(ctx, &enroll.IssueRequest{Account: svcAlice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if err != nil {
		t.Fatal(err)
	}
	lchain := []*x509.Certificate{local.Cert, f.ca.Cert(), f.ca.Root()}
	if revoked, err := f.svc.IsRevoked(ctx, "example.org", lchain); revoked || err != nil {
		t.Fatalf("embedded, not revoked: %v %v", revoked, err)
	}
	if err := f.db.AddCert(ctx, local.Record("x", false), storage.AddOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.SetState(ctx, svcAlice.String(), "x", storage.StateDisabled, "test"); err != nil {
		t.Fatal(err)
	}
	if revoked, err := f.svc.IsRevoked(ctx, "example.org", lchain); !revoked || err != nil {
		t.Fatalf("disabled in the store: %v %v", revoked, err)
	}
	if err := f.ca.Revoke(ctx, &enroll.RevokeRequest{Serial: big.NewInt(1)}); err != nil {
		t.Fatal(err)
	}
}

func TestEnrollServiceTrustAndCheckAppend(t *testing.T) {
	f := newSvcFixture(t, nil)
	ctx := context.Background()
	if roots, _ := f.svc.Trusted("example.org"); roots != nil {
		t.Fatal("example.org trusts nothing")
	}
	if roots, mids := f.svc.Trusted("example.net"); roots == nil || mids == nil {
		t.Fatal("example.net trusts its org CA")
	}
	check := func(account jid.JID, der []byte) error {
		up, err := sasl.CheckUpload(der, account, f.clk.Now(), sasl.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		return f.svc.CheckAppend(ctx, account, up)
	}
	ssAlice := certtest.New(t, certtest.Options{XMPPAddrs: []string{svcAlice.String()}})
	if err := check(svcAlice, ssAlice.DER); err != nil {
		t.Fatalf("self-signed where allowed: %v", err)
	}
	ssBob := certtest.New(t, certtest.Options{XMPPAddrs: []string{svcBob.String()}})
	err := check(svcBob, ssBob.DER)
	var r *sasl.RefusalError
	if !errors.As(err, &r) || r.Reason != enroll.ReasonSelfSignedNotAllowed || !strings.Contains(r.Detail, "example.net accepts only certificates issued by its CA") {
		t.Fatalf("self-signed where not allowed: %v", err)
	}
	t.Log(r.Detail)
	orgBob := certtest.New(t, certtest.Options{Parent: f.org, XMPPAddrs: []string{svcBob.String()}})
	if err := check(svcBob, orgBob.DER); err != nil {
		t.Fatalf("a certificate of the trusted CA: %v", err)
	}
}

func TestEnrollServiceSweep(t *testing.T) {
	f := newSvcFixture(t, func(c *enroll.ServiceConfig, _ *svcFixture) {
		c.Policies["example.com"] = enroll.DomainPolicy{Issuer: "norenew", Lifetime: 3 * time.Hour, AllowSelfSigned: true}
	})
	ctx := context.Background()
	old := f.enroll(t, "tablet")
	carol := jid.MustParse("carol@example.com")
	if _, err := f.svc.Enroll(ctx, &enroll.EnrollRequest{Account: carol, CSR: catest.NewCSR(t, catest.CSROptions{}), Name: "pc"}); err != nil {
		t.Fatal(err)
	}
	sweep := func() []enroll.Notice {
		t.Helper()
		n, err := f.svc.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	f.clk.Add(time.Hour)
	if n := sweep(); len(n) != 0 {
		t.Fatalf("notices an hour in: %+v", n)
	}
	f.clk.Add(65 * time.Minute)
	notices := sweep()
	if len(notices) != 2 {
		t.Fatalf("notices: %+v; want a renewal and a reminder", notices)
	}
	var renewed *storage.Cert
	for _, n := range notices {
		switch {
		case n.Kind == enroll.NoticeRenewed && n.Account.Equal(svcAlice):
			renewed = n.New
			if n.Old.Fingerprint != old.Record.Fingerprint || !strings.HasPrefix(n.New.Name, "tablet (renewed ") {
				t.Fatalf("renewal notice %+v", n)
			}
		case n.Kind == enroll.NoticeExpiring && n.Account.Equal(carol):
		default:
			t.Fatalf("unexpected notice %+v", n)
		}
	}
	oldLeaf, _ := x509.ParseCertificate(old.Record.DER)
	newLeaf, _ := x509.ParseCertificate(renewed.DER)
	if !bytes.Equal(oldLeaf.RawSubjectPublicKeyInfo, newLeaf.RawSubjectPublicKeyInfo) || renewed.Source != storage.SourceEnrolled {
		t.Fatal("the renewal is not an enrolled certificate for the same key")
	}
	if n := sweep(); len(n) != 0 {
		t.Fatalf("a second sweep: %+v; want nothing (renewed, reminded)", n)
	}

	// Revoked in the store behind the service's back (the CLI): revoked at
	// the CA by the next sweep.
	extra := f.enroll(t, "extra", certtest.ECDSAP384) // another key: a revocation revokes the key
	if _, err := f.db.SetState(ctx, svcAlice.String(), "extra", storage.StateRevoked, "cli"); err != nil {
		t.Fatal(err)
	}
	sweep()
	extraLeaf, _ := x509.ParseCertificate(extra.Record.DER)
	if revoked, _, _ := f.ca.CheckRevocation(ctx, extraLeaf, f.ca.Cert()); !revoked {
		t.Fatal("the sweep did not revoke at the CA")
	}

	// The old certificate expires: disabled, since it has a successor.
	f.clk.Add(time.Hour)
	sweep()
	got, err := f.db.FindCertByFingerprint(ctx, old.Record.Fingerprint)
	if err != nil || got.State != storage.StateDisabled {
		t.Fatalf("expired predecessor: %+v %v; want disabled", got, err)
	}
	// The renewal of a renewal keeps one suffix.
	f.clk.Add(90 * time.Minute)
	notices = sweep()
	if len(notices) != 1 || strings.Count(notices[0].New.Name, "(renewed") != 1 {
		t.Fatalf("second renewal: %+v", notices)
	}
	t.Logf("second renewal named %q", notices[0].New.Name)
}
