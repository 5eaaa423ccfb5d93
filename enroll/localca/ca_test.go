package localca_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

var alice = jid.MustParse("alice@example.org")

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newCA initialises a CA in a temporary directory and loads it.
func newCA(t *testing.T, o localca.Options) (*localca.CA, *clock) {
	t.Helper()
	clk := &clock{t: certtest.Now}
	dir := filepath.Join(t.TempDir(), "ca")
	if err := localca.Init(dir, localca.InitOptions{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	if o.Now == nil {
		o.Now = clk.Now
	}
	ca, err := localca.Load(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	return ca, clk
}

func TestCAInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data", "ca")
	if err := localca.Init(dir, localca.InitOptions{Now: func() time.Time { return certtest.Now }}); err != nil {
		t.Fatal(err)
	}
	modes := map[string]fs.FileMode{
		".":                  0o700 | fs.ModeDir,
		localca.RootKeyFile:  0o600,
		localca.KeyFile:      0o600,
		localca.RootCertFile: 0o644,
		localca.CertFile:     0o644,
	}
	for name, want := range modes {
		st, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode() &^ (fs.ModePerm &^ 0o777); got != want {
			t.Errorf("%s: mode %v, want %v", name, got, want)
		}
	}
	err := localca.Init(dir, localca.InitOptions{})
	if !errors.Is(err, localca.ErrExist) {
		t.Fatalf("second Init: %v, want ErrExist", err)
	}
	ca, err := localca.Load(dir, localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	root, inter := ca.Root(), ca.Cert()
	for _, c := range []*x509.Certificate{root, inter} {
		k, ok := c.PublicKey.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() || !c.IsCA || c.KeyUsage&x509.KeyUsageCRLSign == 0 {
			t.Errorf("%s: key %T, CA %v, key usage %b", c.Subject, c.PublicKey, c.IsCA, c.KeyUsage)
		}
	}
	if err := inter.CheckSignatureFrom(root); err != nil || !inter.MaxPathLenZero || root.NotAfter.Before(inter.NotAfter) {
		t.Errorf("intermediate: %v, pathlen zero %v", err, inter.MaxPathLenZero)
	}
	if root.Subject.CommonName != "saslcert root CA" || inter.Subject.CommonName != "saslcert issuing CA" {
		t.Errorf("names %q, %q", root.Subject, inter.Subject)
	}

	// A key readable by others is refused.
	if err := os.Chmod(filepath.Join(dir, localca.KeyFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := localca.Load(dir, localca.Options{}); err == nil {
		t.Error("Load accepted a world-readable key")
	}
	os.Chmod(filepath.Join(dir, localca.KeyFile), 0o600)

	// Another CA's key is refused.
	other := filepath.Join(t.TempDir(), "other")
	if err := localca.Init(other, localca.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(other, localca.KeyFile))
	os.WriteFile(filepath.Join(dir, localca.KeyFile), data, 0o600)
	if _, err := localca.Load(dir, localca.Options{}); err == nil {
		t.Error("Load accepted a key that does not match ca.crt")
	}
}

func TestCAInitRefusesPartial(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, localca.RootKeyFile), []byte("x"), 0o600)
	if err := localca.Init(dir, localca.InitOptions{}); !errors.Is(err, localca.ErrExist) {
		t.Fatalf("Init over a root key: %v, want ErrExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, localca.CertFile)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("Init wrote files after refusing")
	}
}

func checkIssued(t *testing.T, ca *localca.CA, is *enroll.Issued, now time.Time, lifetime time.Duration) {
	t.Helper()
	c := is.Cert
	sans, err := sasl.CertSANs(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("embedded CA issued: serial %x (%d bits) subject %q xmppAddr=%v EKU=%v valid %s .. %s CRL=%v",
		c.SerialNumber, c.SerialNumber.BitLen(), c.Subject, sans.XMPPAddrs, c.ExtKeyUsage,
		c.NotBefore.UTC().Format(time.RFC3339), c.NotAfter.UTC().Format(time.RFC3339), c.CRLDistributionPoints)
	if len(sans.XMPPAddrs) != 1 || !sans.XMPPAddrs[0].Equal(alice) || len(sans.DNSNames)+len(sans.OtherNames)+len(sans.BadAddrs) != 0 {
		t.Errorf("names: %+v", sans)
	}
	// The email address and the CN are the bare JID too, for clients that
	// read the account from them (Conversations).
	if !slices.Equal(c.EmailAddresses, []string{alice.String()}) || c.Subject.String() != "CN="+alice.String() {
		t.Errorf("email addresses %v, subject %q; want exactly %s as both", c.EmailAddresses, c.Subject, alice)
	}
	if !slices.Equal(c.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || c.IsCA {
		t.Errorf("EKU %v, CA %v", c.ExtKeyUsage, c.IsCA)
	}
	if !c.NotAfter.Equal(now.Add(lifetime)) || !c.NotBefore.Equal(now.Add(-time.Minute)) {
		t.Errorf("validity %s .. %s, want %s .. %s", c.NotBefore, c.NotAfter, now.Add(-time.Minute), now.Add(lifetime))
	}
	if c.SerialNumber.BitLen() > 128 || c.SerialNumber.BitLen() < 64 {
		t.Errorf("serial has %d bits", c.SerialNumber.BitLen())
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Root())
	inter := x509.NewCertPool()
	inter.AddCert(ca.Cert())
	if _, err := c.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("does not verify to the root: %v", err)
	}
	if len(is.Chain) != 2 || !slices.Equal(is.Chain[1], ca.Cert().Raw) {
		t.Errorf("chain of %d", len(is.Chain))
	}
	if r := is.Record("laptop", false); r.Source != "enrolled" || r.Account != "alice@example.org" {
		t.Errorf("record %+v", r)
	}
}

func TestEnrollEmbeddedIssueFromCSR(t *testing.T) {
	ca, clk := newCA(t, localca.Options{CRLURL: "http://127.0.0.1:5281/crl"})
	key := certtest.Key(t, certtest.ECDSAP256)
	is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice,
		CSR: catest.NewCSR(t, catest.CSROptions{Key: key, CommonName: "alice@example.org", XMPPAddr: "alice@example.org"})})
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, ca, is, clk.Now(), enroll.DefaultLifetime)
	if !slices.Equal(is.Cert.CRLDistributionPoints, []string{"http://127.0.0.1:5281/crl"}) {
		t.Errorf("CRL DP %v", is.Cert.CRLDistributionPoints)
	}

	is, err = ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, ca, is, clk.Now(), 24*time.Hour)

	for _, tc := range []struct {
		name string
		req  *enroll.IssueRequest
	}{
		{"error/other-jid", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{XMPPAddr: "bob@example.org"})}},
		{"error/dns", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{DNSNames: []string{"example.org"}})}},
		{"error/too-long", &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{}), Lifetime: 365 * 24 * time.Hour}},
		{"error/full-jid-account", &enroll.IssueRequest{Account: jid.MustParse("alice@example.org/phone"), CSR: catest.NewCSR(t, catest.CSROptions{})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ca.Issue(t.Context(), tc.req); !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("err = %v, want ErrBadRequest", err)
			}
		})
	}
}

func TestEnrollEmbeddedIssueFromSelfSigned(t *testing.T) {
	ca, clk := newCA(t, localca.Options{Lifetime: 48 * time.Hour})
	up := certtest.New(t, certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}, KeyType: certtest.Ed25519})
	is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: up.DER})
	if err != nil {
		t.Fatal(err)
	}
	checkIssued(t, ca, is, clk.Now(), 48*time.Hour)
	if !up.Key.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(is.Cert.PublicKey) {
		t.Error("the issued certificate is for another key than the uploaded one")
	}

	// A certificate whose self-signature does not verify proves nothing.
	forged := forge(t, up.Cert)
	if _, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: forged}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Fatalf("forged self-signature: err = %v, want ErrBadRequest", err)
	}
	// Bob's certificate cannot be signed for alice.
	bob := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}})
	if _, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: bob.DER}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Fatalf("other account's certificate: err = %v, want ErrBadRequest", err)
	}
}

// forge returns c's DER with the last byte of its signature changed: the
// same certificate, claiming a self-signature it does not have.
func forge(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	der := slices.Clone(c.Raw)
	der[len(der)-1] ^= 0x55
	if _, err := x509.ParseCertificate(der); err != nil {
		t.Fatalf("forged certificate does not parse: %v", err)
	}
	return der
}

func TestEnrollEmbeddedCAExpiry(t *testing.T) {
	clk := &clock{t: certtest.Now}
	dir := t.TempDir()
	if err := localca.Init(dir, localca.InitOptions{Now: clk.Now, CALifetime: 3 * 24 * time.Hour, RootLifetime: 10 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, CSR: catest.NewCSR(t, catest.CSROptions{})})
	if !errors.Is(err, enroll.ErrUnavailable) {
		t.Fatalf("issuing past the CA's expiry: err = %v, want ErrUnavailable", err)
	}
}

func TestCALoadOptions(t *testing.T) {
	dir := t.TempDir()
	if err := localca.Init(dir, localca.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range []localca.Options{{Lifetime: 100 * 24 * time.Hour}, {CRLValidity: time.Second}, {Lifetime: -1}} {
		if _, err := localca.Load(dir, o); err == nil {
			t.Errorf("Load(%+v) accepted", o)
		}
	}
	if _, err := localca.Load(t.TempDir(), localca.Options{}); err == nil {
		t.Error("Load of an empty directory succeeded")
	}
}

// A certificate made by openssl as a client would (testdata/hamlet.der, CN
// "hamlet", xmppAddr hamlet@shakespeare.lit) is signed for hamlet.
func TestEnrollEmbeddedSignsOpenSSLSelfSigned(t *testing.T) {
	der, err := os.ReadFile("../../testdata/hamlet.der")
	if err != nil {
		t.Fatal(err)
	}
	up, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: up.NotBefore.Add(time.Hour)}
	dir := t.TempDir()
	if err := localca.Init(dir, localca.InitOptions{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	ca, err := localca.Load(dir, localca.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	hamlet := jid.MustParse("hamlet@shakespeare.lit")
	is, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: hamlet, SelfSigned: der})
	if err != nil {
		t.Fatal(err)
	}
	if is.Cert.Subject.CommonName != "hamlet@shakespeare.lit" || is.Upload.Account.String() != "hamlet@shakespeare.lit" {
		t.Errorf("issued for %q / %s", is.Cert.Subject, is.Upload.Account)
	}
	if _, err := ca.Issue(t.Context(), &enroll.IssueRequest{Account: alice, SelfSigned: der}); !errors.Is(err, enroll.ErrBadRequest) {
		t.Errorf("hamlet's certificate signed for alice: %v", err)
	}
}
