package enroll_test

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"testing"
	"time"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

var alice = jid.MustParse("alice@example.org")

// clientSAN is enroll.ClientSAN(j) or a fatal error.
func clientSAN(t *testing.T, j jid.JID) []byte {
	t.Helper()
	b, err := enroll.ClientSAN(j)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustExt(t *testing.T, oid asn1.ObjectIdentifier, v any) pkix.Extension {
	t.Helper()
	b, err := asn1.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return pkix.Extension{Id: oid, Value: b}
}

func TestEnrollCheckCSR(t *testing.T) {
	var (
		oidKU  = asn1.ObjectIdentifier{2, 5, 29, 15}
		oidEKU = asn1.ObjectIdentifier{2, 5, 29, 37}
		oidBC  = asn1.ObjectIdentifier{2, 5, 29, 19}
		oidCA  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
		oidSA  = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 1}
	)
	xa := certtest.XMPPAddr
	forged := catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org"})
	forged.Signature = append([]byte(nil), forged.Signature...)
	forged.Signature[len(forged.Signature)-2] ^= 1
	tests := []struct {
		name    string
		csr     *x509.CertificateRequest
		account jid.JID
		ok      bool
	}{
		{"ok/empty", catest.NewCSR(t, catest.CSROptions{}), alice, true},
		{"ok/cn", catest.NewCSR(t, catest.CSROptions{CommonName: "alice@example.org"}), alice, true},
		{"ok/xmppaddr", catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org"}), alice, true},
		{"ok/cn-and-xmppaddr", catest.NewCSR(t, catest.CSROptions{CommonName: "alice@example.org", XMPPAddr: "alice@example.org"}), alice, true},
		{"ok/ed25519", catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.Ed25519)}), alice, true},
		{"ok/rsa-2048", catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.RSA2048)}), alice, true},
		{"ok/client-auth-extensions", catest.NewCSR(t, catest.CSROptions{Extensions: []pkix.Extension{
			mustExt(t, oidKU, asn1.BitString{Bytes: []byte{0x80}, BitLength: 1}),
			mustExt(t, oidEKU, []asn1.ObjectIdentifier{oidCA}),
			mustExt(t, oidBC, struct{}{}),
		}}), alice, true},
		{"error/forged-signature", forged, alice, false},
		{"error/rsa-1024", catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.RSA1024)}), alice, false},
		{"error/p224", catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.ECDSAP224)}), alice, false},
		{"error/other-jid", catest.NewCSR(t, catest.CSROptions{XMPPAddr: "bob@example.org"}), alice, false},
		{"error/other-domain", catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.com"}), alice, false},
		{"error/full-jid", catest.NewCSR(t, catest.CSROptions{XMPPAddr: "alice@example.org/phone"}), alice, false},
		{"error/domain-jid", catest.NewCSR(t, catest.CSROptions{XMPPAddr: "example.org"}), alice, false},
		{"error/two-xmppaddrs", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{xa("alice@example.org"), xa("alice@example.org")}, nil)}), alice, false},
		{"error/dns", catest.NewCSR(t, catest.CSROptions{DNSNames: []string{"example.org"}}), alice, false},
		{"error/xmppaddr-and-dns", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{xa("alice@example.org")}, []string{"example.org"})}), alice, false},
		{"ok/xmppaddr-and-email", catest.NewCSR(t, catest.CSROptions{RawSAN: clientSAN(t, alice)}), alice, true},
		{"ok/subject-cn-and-email", catest.NewCSR(t, catest.CSROptions{CommonName: "alice@example.org", RawSAN: clientSAN(t, alice), SubjectEmail: "alice@example.org"}), alice, true},
		{"error/email-alone", catest.NewCSR(t, catest.CSROptions{Emails: []string{"alice@example.org"}}), alice, false},
		{"error/email-other-account", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SANWithEmails([]certtest.OtherName{xa("alice@example.org")}, nil, []string{"bob@example.org"})}), alice, false},
		{"error/email-uppercase", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SANWithEmails([]certtest.OtherName{xa("alice@example.org")}, nil, []string{"Alice@example.org"})}), alice, false},
		{"error/two-emails", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SANWithEmails([]certtest.OtherName{xa("alice@example.org")}, nil, []string{"alice@example.org", "alice@example.org"})}), alice, false},
		{"error/email-before-xmppaddr", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.TLV(cbasn1.SEQUENCE,
			append(certtest.TLV(cbasn1.Tag(1).ContextSpecific(), []byte("alice@example.org")), certtest.SAN([]certtest.OtherName{xa("alice@example.org")}, nil)[2:]...))}), alice, false},
		{"error/subject-email-other-account", catest.NewCSR(t, catest.CSROptions{SubjectEmail: "bob@example.org"}), alice, false},
		{"error/upn", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "alice@example.org")}, nil)}), alice, false},
		{"error/ia5-xmppaddr", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{{OID: certtest.OIDXMPPAddr, Value: certtest.TLV(22, []byte("alice@example.org"))}}, nil)}), alice, false},
		{"error/uppercase", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.SAN([]certtest.OtherName{xa("ALICE@example.org")}, nil)}), alice, false},
		{"error/xmppaddr-and-registered-id", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.TLV(cbasn1.SEQUENCE,
			append(certtest.SAN([]certtest.OtherName{xa("alice@example.org")}, nil)[2:], certtest.TLV(cbasn1.Tag(8).ContextSpecific(), []byte{0x2a, 0x03})...))}), alice, false},
		{"error/empty-san", catest.NewCSR(t, catest.CSROptions{RawSAN: certtest.TLV(cbasn1.SEQUENCE, nil)}), alice, false},
		{"error/other-cn", catest.NewCSR(t, catest.CSROptions{CommonName: "admin"}), alice, false},
		{"error/ca", catest.NewCSR(t, catest.CSROptions{Extensions: []pkix.Extension{mustExt(t, oidBC, struct{ CA bool }{true})}}), alice, false},
		{"error/cert-sign", catest.NewCSR(t, catest.CSROptions{Extensions: []pkix.Extension{mustExt(t, oidKU, asn1.BitString{Bytes: []byte{0x04}, BitLength: 6})}}), alice, false},
		{"error/server-auth", catest.NewCSR(t, catest.CSROptions{Extensions: []pkix.Extension{mustExt(t, oidEKU, []asn1.ObjectIdentifier{oidCA, oidSA})}}), alice, false},
		{"error/unknown-extension", catest.NewCSR(t, catest.CSROptions{Extensions: []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}}}), alice, false},
		{"error/bare-account-needed", catest.NewCSR(t, catest.CSROptions{}), jid.MustParse("alice@example.org/phone"), false},
		{"error/domain-account", catest.NewCSR(t, catest.CSROptions{}), jid.MustParse("example.org"), false},
		{"error/nil", nil, alice, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := enroll.CheckCSR(tc.csr, tc.account)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckCSR = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
		})
	}
}

// A subject with attributes other than CN is refused (a CA copying the
// subject would put an organisation saslcert never checked into it).
func TestEnrollCheckCSRSubjectAttributes(t *testing.T) {
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice@example.org", Organization: []string{"Evil"}}}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, certtest.Key(t, certtest.ECDSAP256))
	if err != nil {
		t.Fatal(err)
	}
	csr, _ := x509.ParseCertificateRequest(der)
	if err := enroll.CheckCSR(csr, alice); !errors.Is(err, enroll.ErrBadRequest) {
		t.Fatalf("err = %v, want ErrBadRequest", err)
	}
}

func TestEnrollCheckSelfSigned(t *testing.T) {
	now := certtest.Now
	good := certtest.New(t, certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}})
	ca := certtest.NewCA(t, "some CA")
	signedByCA := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Parent: ca})
	// Forged: alice's certificate with the signature of another one.
	other := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Key: certtest.Key(t, certtest.ECDSAP384)})
	forged := *good.Cert
	forged.Signature = other.Cert.Signature
	tests := []struct {
		name string
		der  []byte
		ok   bool
	}{
		{"ok", good.DER, true},
		{"ok/any-subject-and-extra-names", certtest.New(t, certtest.Options{CommonName: "Your Name", XMPPAddrs: []string{"alice@example.org"}, DNSNames: []string{"example.org"}}).DER, true},
		{"ok/ed25519", certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyType: certtest.Ed25519}).DER, true},
		{"error/forged", reencode(t, &forged), false},
		{"error/signed-by-a-ca", signedByCA.DER, false},
		{"error/no-xmppaddr", certtest.New(t, certtest.Options{CommonName: "alice@example.org"}).DER, false},
		{"error/other-jid", certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}}).DER, false},
		{"error/full-jid", certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/phone"}}).DER, false},
		{"error/expired", certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)}).DER, false},
		{"error/rsa-1024", certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyType: certtest.RSA1024}).DER, false},
		{"error/ca", certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, IsCA: true}).DER, false},
		{"error/garbage", []byte("garbage"), false},
		{"error/chain", append(append([]byte(nil), good.DER...), ca.DER...), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := enroll.CheckSelfSigned(tc.der, alice, now)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckSelfSigned = %v, want ok %v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, enroll.ErrBadRequest) {
				t.Fatalf("error %v does not wrap ErrBadRequest", err)
			}
			if err == nil && c == nil {
				t.Fatal("no certificate")
			}
		})
	}
}

// reencode builds the DER of c with its (possibly replaced) signature.
func reencode(t *testing.T, c *x509.Certificate) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct {
		TBS asn1.RawValue
		Alg pkix.AlgorithmIdentifier
		Sig asn1.BitString
	}{
		TBS: asn1.RawValue{FullBytes: c.RawTBSCertificate},
		Alg: pkix.AlgorithmIdentifier{Algorithm: asn1.ObjectIdentifier{1, 2, 840, 10045, 4, 3, 2}},
		Sig: asn1.BitString{Bytes: c.Signature, BitLength: 8 * len(c.Signature)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEnrollCheckIssued(t *testing.T) {
	now := certtest.Now
	root := certtest.NewCA(t, "root")
	key := certtest.Key(t, certtest.ECDSAP256)
	issue := func(o certtest.Options) [][]byte {
		o.Parent, o.Key = root, key
		return [][]byte{certtest.New(t, o).DER, root.DER}
	}
	tests := []struct {
		name  string
		chain [][]byte
		roots []*x509.Certificate
		ok    bool
	}{
		{"ok", issue(certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}}), []*x509.Certificate{root.Cert}, true},
		{"ok/no-roots-given", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}}), nil, true},
		{"ok/xmppaddr-and-email", issue(certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}, Emails: []string{"alice@example.org"}}), nil, true},
		{"error/email-other-account", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Emails: []string{"bob@example.org"}}), nil, false},
		{"error/two-emails", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, Emails: []string{"alice@example.org", "alice@example.org"}}), nil, false},
		{"error/xmppaddr-email-and-dns", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, DNSNames: []string{"example.org"}, Emails: []string{"alice@example.org"}}), nil, false},
		{"error/other-root", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}}), []*x509.Certificate{certtest.NewCA(t, "other").Cert}, false},
		{"error/two-xmppaddrs", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org", "alice@example.org"}}), nil, false},
		{"error/xmppaddr-and-dns", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, DNSNames: []string{"example.org"}}), nil, false},
		{"error/xmppaddr-and-upn", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, OtherNames: []certtest.OtherName{certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "a@b")}}), nil, false},
		{"error/full-jid", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org/phone"}}), nil, false},
		{"error/other-jid", issue(certtest.Options{XMPPAddrs: []string{"bob@example.org"}}), nil, false},
		{"error/no-eku", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NoEKU: true}), nil, false},
		{"error/server-auth", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}), nil, false},
		{"error/client-and-server-auth", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth}}), nil, false},
		{"error/client-auth-and-code-signing", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageCodeSigning}}), nil, false},
		{"error/client-auth-and-ocsp-signing", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageOCSPSigning}}), nil, false},
		{"error/client-auth-and-any", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageAny}}), nil, false},
		{"error/key-cert-sign", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyUsage: x509.KeyUsageCertSign}), nil, false},
		{"error/crl-sign", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyUsage: x509.KeyUsageCRLSign}), nil, false},
		{"error/ca", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, IsCA: true, EKU: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), nil, false},
		{"error/expired", issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: now.Add(-72 * time.Hour), NotAfter: now.Add(-48 * time.Hour)}), nil, false},
		{"error/empty", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			is, err := enroll.CheckIssued(tc.chain, alice, key.Public(), now, tc.roots)
			if tc.ok != (err == nil) {
				t.Fatalf("CheckIssued = %v, want ok %v", err, tc.ok)
			}
			if err != nil {
				if !errors.Is(err, enroll.ErrBadIssued) {
					t.Fatalf("error %v does not wrap ErrBadIssued", err)
				}
				return
			}
			if rec := is.Record("laptop", true); rec.Source != "enrolled" || rec.Name != "laptop" || !rec.NoCertManagement || rec.Account != "alice@example.org" {
				t.Errorf("record = %+v", rec)
			}
		})
	}
	t.Run("error/other-key", func(t *testing.T) {
		chain := issue(certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
		if _, err := enroll.CheckIssued(chain, alice, certtest.Key(t, certtest.ECDSAP384).Public(), now, nil); !errors.Is(err, enroll.ErrBadIssued) {
			t.Fatalf("err = %v, want ErrBadIssued", err)
		}
	})
}

func TestEnrollIssueRequestCheck(t *testing.T) {
	csr := catest.NewCSR(t, catest.CSROptions{})
	for _, tc := range []struct {
		name string
		req  *enroll.IssueRequest
		ok   bool
	}{
		{"ok/csr", &enroll.IssueRequest{Account: alice, CSR: csr}, true},
		{"ok/self-signed", &enroll.IssueRequest{Account: alice, SelfSigned: []byte{1}}, true},
		{"error/nil", nil, false},
		{"error/neither", &enroll.IssueRequest{Account: alice}, false},
		{"error/both", &enroll.IssueRequest{Account: alice, CSR: csr, SelfSigned: []byte{1}}, false},
		{"error/negative-lifetime", &enroll.IssueRequest{Account: alice, CSR: csr, Lifetime: -time.Hour}, false},
		{"error/no-account", &enroll.IssueRequest{CSR: csr}, false},
		// Issue 10.5: Prosody would bind strasse@example.org.
		{"error/account-two-forms", &enroll.IssueRequest{Account: jid.MustParse("straße@example.org"), CSR: csr}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.req.Check(); (err == nil) != tc.ok || (err != nil && !errors.Is(err, enroll.ErrBadRequest)) {
				t.Fatalf("Check = %v, want ok %v", err, tc.ok)
			}
		})
	}
}

// TestEnrollCheckAccountForms: an account the XMPP server reads as another
// one is a bad request that names both forms (issue 10.5).
func TestEnrollCheckAccountForms(t *testing.T) {
	for _, tc := range []struct {
		name, account string
		forms         bool // refused with sasl.ErrJIDForms
	}{
		{"ok/ascii", "alice@example.org", false},
		{"ok/accented", "josé@example.org", false},
		{"error/sharp-s", "straße@example.org", true},
		{"error/final-sigma", "σοφίας@example.org", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enroll.CheckAccount(jid.MustParse(tc.account))
			if !tc.forms {
				if err != nil {
					t.Fatalf("CheckAccount(%s) = %v", tc.account, err)
				}
				return
			}
			if !errors.Is(err, enroll.ErrBadRequest) || !errors.Is(err, sasl.ErrJIDForms) {
				t.Fatalf("CheckAccount(%s) = %v, want ErrBadRequest and sasl.ErrJIDForms", tc.account, err)
			}
		})
	}
}

func TestEnrollRevokeRequestSerialNumber(t *testing.T) {
	c := certtest.New(t, certtest.Options{Serial: 42})
	for _, tc := range []struct {
		name string
		req  enroll.RevokeRequest
		want int64
	}{
		{"ok/cert", enroll.RevokeRequest{Cert: c.Cert, Serial: big.NewInt(7)}, 42},
		{"ok/serial", enroll.RevokeRequest{Serial: big.NewInt(7), Reason: enroll.ReasonSuperseded}, 7},
		{"error/none", enroll.RevokeRequest{}, 0},
		{"error/zero", enroll.RevokeRequest{Serial: big.NewInt(0)}, 0},
		{"error/hold", enroll.RevokeRequest{Serial: big.NewInt(7), Reason: 6}, 0},
		{"error/remove-from-crl", enroll.RevokeRequest{Serial: big.NewInt(7), Reason: 8}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sn, err := tc.req.SerialNumber()
			if tc.want == 0 {
				if !errors.Is(err, enroll.ErrBadRequest) {
					t.Fatalf("err = %v, want ErrBadRequest", err)
				}
				return
			}
			if err != nil || sn.Int64() != tc.want {
				t.Fatalf("SerialNumber = %v, %v; want %d", sn, err, tc.want)
			}
		})
	}
}

// FuzzCheckCSR: whatever a client sends as a CSR, CheckCSR never panics and
// accepts only requests naming nobody or exactly the account (as xmppAddr,
// and as email address).
func FuzzCheckCSR(f *testing.F) {
	f.Add(catest.NewCSR(f, catest.CSROptions{XMPPAddr: "alice@example.org"}).Raw)
	f.Add(catest.NewCSR(f, catest.CSROptions{DNSNames: []string{"example.org"}}).Raw)
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			return
		}
		if enroll.CheckCSR(csr, alice) != nil {
			return
		}
		if len(csr.DNSNames)+len(csr.IPAddresses)+len(csr.URIs) != 0 || len(csr.EmailAddresses) > 1 ||
			(len(csr.EmailAddresses) == 1 && csr.EmailAddresses[0] != alice.String()) {
			t.Fatalf("accepted a CSR with other names: %v %v %v %v", csr.DNSNames, csr.EmailAddresses, csr.IPAddresses, csr.URIs)
		}
	})
}
