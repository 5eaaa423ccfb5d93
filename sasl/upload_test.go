package sasl_test

import (
	"bytes"
	"crypto"
	_ "crypto/md5" // MD5 for the resigned fixture
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"math/big"
	"reflect"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

func TestCheckUpload(t *testing.T) {
	now := certtest.Now
	alice := jid.MustParse("alice@example.org")
	x := func(addrs ...string) certtest.Options { return certtest.Options{XMPPAddrs: addrs} }
	withOpts := func(o certtest.Options, f func(*certtest.Options)) certtest.Options { f(&o); return o }
	der := func(o certtest.Options) func(testing.TB) []byte {
		return func(tb testing.TB) []byte { return certtest.New(tb, o).DER }
	}
	upn := certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "alice@example.org")

	tests := []struct {
		name         string
		der          func(testing.TB) []byte
		account      jid.JID // zero: alice
		policy       *sasl.Policy
		want         sasl.Reason // "" means accepted
		wantDetail   string      // substring of the Detail
		wantResource string
	}{
		{name: "ok/ecdsa-p256", der: der(x("alice@example.org"))},
		{name: "ok/ecdsa-p384", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.ECDSAP384 }))},
		{name: "ok/ecdsa-p521", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.ECDSAP521 }))},
		{name: "ok/rsa-2048", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.RSA2048 }))},
		{name: "ok/ed25519", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.Ed25519 }))},
		{name: "ok/no-eku", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.NoEKU = true }))},
		{name: "ok/eku-any", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageAny} }))},
		{name: "ok/eku-server-and-client", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
		}))},
		{name: "ok/critical-othername-only-san", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.CriticalSAN = true }))},
		{name: "ok/uppercase-jid-normalised", der: der(x("ALICE@Example.ORG"))},
		{name: "ok/idn-a-label-in-cert", der: der(x("alice@xn--bcher-kva.example")), account: jid.MustParse("alice@bücher.example")},
		{name: "ok/idn-u-label-in-cert", der: der(x("alice@bücher.example")), account: jid.MustParse("alice@xn--bcher-kva.example")},
		{name: "ok/idn-uppercase-u-label", der: der(x("alice@BÜCHER.example")), account: jid.MustParse("alice@xn--bcher-kva.example")},
		{name: "ok/full-jid-forces-resource", der: der(x("alice@example.org/tablet")), wantResource: "tablet"},
		{name: "ok/same-full-jid-twice", der: der(x("alice@example.org/tablet", "Alice@example.org/tablet")), wantResource: "tablet"},
		{name: "ok/bare-twice", der: der(x("alice@example.org", "ALICE@example.org"))},
		{name: "ok/account-full-jid-reduced", der: der(x("alice@example.org")), account: jid.MustParse("alice@example.org/phone")},
		{name: "ok/other-account-alongside", der: der(x("bob@example.org", "alice@example.org"))},
		{name: "ok/other-resource-of-other-account", der: der(x("bob@example.org/x", "alice@example.org"))},
		{name: "ok/upn-alongside", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.OtherNames = []certtest.OtherName{upn} }))},
		{name: "ok/dns-alongside", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.DNSNames = []string{"example.org"} }))},
		{name: "ok/email-is-the-account", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.Emails = []string{"alice@example.org"} }))},
		{name: "ok/subject-email-is-the-account", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.SubjectEmail = "alice@example.org" }))},
		{name: "ok/email-bare-with-forced-resource", der: der(withOpts(x("alice@example.org/tablet"), func(o *certtest.Options) { o.Emails = []string{"alice@example.org"} })),
			wantResource: "tablet"},
		{name: "ok/skew-allows-just-expired", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.NotBefore, o.NotAfter = now.Add(-48*time.Hour), now.Add(-4*time.Minute)
		}))},
		{name: "ok/skew-allows-not-yet-valid", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.NotBefore = now.Add(4 * time.Minute)
		}))},

		{name: "error/empty", der: func(testing.TB) []byte { return nil }, want: sasl.ReasonMalformed},
		{name: "error/garbage", der: func(testing.TB) []byte { return []byte("not a certificate") }, want: sasl.ReasonMalformed, wantDetail: "not a valid X.509 certificate"},
		{name: "error/pem-not-der", der: func(tb testing.TB) []byte { return certtest.New(tb, x("alice@example.org")).CertPEM() }, want: sasl.ReasonMalformed, wantDetail: "PEM"},
		{name: "error/truncated", der: func(tb testing.TB) []byte { d := certtest.New(tb, x("alice@example.org")).DER; return d[:len(d)-10] }, want: sasl.ReasonMalformed},
		{name: "error/two-certs", der: func(tb testing.TB) []byte {
			return concat(certtest.New(tb, x("alice@example.org")).DER, certtest.New(tb, x("alice@example.org")).DER)
		}, want: sasl.ReasonTrailingData, wantDetail: "not a chain"},
		{name: "error/trailing-garbage", der: func(tb testing.TB) []byte { return concat(certtest.New(tb, x("alice@example.org")).DER, []byte{0, 0}) },
			want: sasl.ReasonTrailingData, wantDetail: "2 bytes follow"},
		{name: "error/expired", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.NotBefore, o.NotAfter = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		})), want: sasl.ReasonExpired, wantDetail: "the certificate expired on 2026-01-01T00:00:00Z; upload a certificate that is valid now"},
		{name: "error/expired-beyond-skew", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.NotBefore, o.NotAfter = now.Add(-48*time.Hour), now.Add(-6*time.Minute)
		})), want: sasl.ReasonExpired},
		{name: "error/expired-no-skew", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.NotBefore, o.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Second)
		})), policy: &sasl.Policy{MinRSABits: 2048}, want: sasl.ReasonExpired},
		{name: "error/not-yet-valid", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.NotBefore = now.Add(time.Hour) })),
			want: sasl.ReasonNotYetValid, wantDetail: "not valid before 2026-11-22T13:00:00Z"},
		{name: "error/not-yet-valid-beyond-skew", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.NotBefore = now.Add(6 * time.Minute) })),
			want: sasl.ReasonNotYetValid},
		{name: "error/no-san", der: der(certtest.Options{}), want: sasl.ReasonNoXMPPAddr, wantDetail: "otherName:1.3.6.1.5.5.7.8.5;UTF8:alice@example.org"},
		{name: "error/dns-only", der: der(certtest.Options{DNSNames: []string{"alice.example.org"}}), want: sasl.ReasonNoXMPPAddr},
		{name: "error/upn-only", der: der(certtest.Options{OtherNames: []certtest.OtherName{upn}}), want: sasl.ReasonNoXMPPAddr, wantDetail: "1.3.6.1.4.1.311.20.2.3 is not a JID"},
		{name: "error/bmpstring", der: der(certtest.Options{OtherNames: []certtest.OtherName{xmppOther(bmp("alice@example.org"))}}), want: sasl.ReasonNoXMPPAddr, wantDetail: "BMPString"},
		{name: "error/ia5string", der: der(certtest.Options{OtherNames: []certtest.OtherName{xmppOther(certtest.TLV(0x16, []byte("alice@example.org")))}}), want: sasl.ReasonNoXMPPAddr, wantDetail: "IA5String"},
		{name: "error/nul", der: der(x("alice@example.org\x00.evil.example")), want: sasl.ReasonNoXMPPAddr, wantDetail: "NUL"},
		{name: "error/invalid-jid", der: der(x("alice@exa mple.org")), want: sasl.ReasonNoXMPPAddr, wantDetail: "invalid JID"},
		{name: "error/two-forms-sharp-s", der: der(x("straße@example.org")), account: jid.MustParse("strasse@example.org"), want: sasl.ReasonNoXMPPAddr, wantDetail: `"strasse" for the XMPP server`},
		{name: "error/two-forms-next-to-good", der: der(x("alice@example.org", "alice@example.org/ﬀ")), want: sasl.ReasonBadXMPPAddr, wantDetail: "resourceprep"},
		{name: "error/account-two-forms", der: der(x("alice@example.org")), account: jid.MustParse("\u13A0@example.org"), want: sasl.ReasonWrongAccount, wantDetail: "for the XMPP server"},
		{name: "error/bad-next-to-good", der: der(certtest.Options{XMPPAddrs: []string{"alice@example.org"}, OtherNames: []certtest.OtherName{xmppOther(bmp("mallory@example.org"))}}),
			want: sasl.ReasonBadXMPPAddr, wantDetail: "BMPString"},
		{name: "error/wrong-account", der: der(x("bob@example.org")), want: sasl.ReasonWrongAccount,
			wantDetail: "the certificate names bob@example.org but you are alice@example.org"},
		{name: "error/email-other-account", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.Emails = []string{"bob@example.org"} })),
			want: sasl.ReasonWrongEmail, wantDetail: `the email address "bob@example.org" (an rfc822Name subjectAltName) is not you (alice@example.org)`},
		{name: "error/email-second-other-account", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.Emails = []string{"alice@example.org", "mallory@example.org"} })),
			want: sasl.ReasonWrongEmail, wantDetail: `"mallory@example.org"`},
		{name: "error/email-not-canonical", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.Emails = []string{"Alice@example.org"} })),
			want: sasl.ReasonWrongEmail, wantDetail: "must be exactly your bare JID alice@example.org"},
		{name: "error/email-full-jid", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.Emails = []string{"alice@example.org/x"} })),
			want: sasl.ReasonWrongEmail},
		{name: "error/subject-email-other-account", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.SubjectEmail = "bob@example.org" })),
			want: sasl.ReasonWrongEmail, wantDetail: `"bob@example.org" (the subject's emailAddress)`},
		{name: "error/email-only-no-xmppaddr", der: der(certtest.Options{Emails: []string{"alice@example.org"}}), want: sasl.ReasonNoXMPPAddr},
		{name: "error/other-domain", der: der(x("alice@example.net")), want: sasl.ReasonWrongAccount, wantDetail: "names alice@example.net"},
		{name: "error/look-alike-cyrillic", der: der(x("аlice@example.org")), want: sasl.ReasonWrongAccount, wantDetail: `\u0430lice`},
		{name: "error/domain-jid", der: der(x("example.org")), want: sasl.ReasonWrongAccount},
		{name: "error/ambiguous-bare-and-full", der: der(x("alice@example.org", "alice@example.org/tablet")), want: sasl.ReasonAmbiguousResource, wantDetail: `"tablet"`},
		{name: "error/ambiguous-full-and-bare", der: der(x("alice@example.org/tablet", "alice@example.org")), want: sasl.ReasonAmbiguousResource},
		{name: "error/ambiguous-two-resources", der: der(x("alice@example.org/tablet", "alice@example.org/phone")), want: sasl.ReasonAmbiguousResource, wantDetail: `"tablet" and "phone"`},
		{name: "error/rsa-1024", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.RSA1024 })),
			want: sasl.ReasonWeakKey, wantDetail: "RSA key of 1024 bits; at least 2048 are required"},
		{name: "error/rsa-2048-policy-3072", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.RSA2048 })),
			policy: &sasl.Policy{ClockSkew: 5 * time.Minute, MinRSABits: 3072}, want: sasl.ReasonWeakKey, wantDetail: "at least 3072"},
		{name: "error/rsa-1024-zero-policy-means-2048", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.RSA1024 })),
			policy: &sasl.Policy{}, want: sasl.ReasonWeakKey, wantDetail: "at least 2048"},
		{name: "error/p224", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.ECDSAP224 })),
			want: sasl.ReasonWeakKey, wantDetail: "P-224"},
		{name: "error/sha1-rsa", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) {
			o.KeyType, o.SigAlg = certtest.RSA2048, x509.SHA1WithRSA
		})), want: sasl.ReasonWeakSignature, wantDetail: "signed with SHA1-RSA; SHA-1 and MD5 signatures are refused"},
		{name: "error/ecdsa-sha1", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.SigAlg = x509.ECDSAWithSHA1 })),
			want: sasl.ReasonWeakSignature, wantDetail: "ECDSA-SHA1"},
		{name: "error/md5-rsa", der: func(tb testing.TB) []byte {
			c := certtest.New(tb, withOpts(x("alice@example.org"), func(o *certtest.Options) { o.KeyType = certtest.RSA2048 }))
			return resign(tb, c.DER, c.Key.(*rsa.PrivateKey), asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 4}, crypto.MD5)
		}, want: sasl.ReasonWeakSignature, wantDetail: "MD5-RSA"},
		{name: "error/ca", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.IsCA = true })), want: sasl.ReasonCA},
		{name: "error/server-auth-only", der: der(withOpts(x("alice@example.org"), func(o *certtest.Options) { o.EKU = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} })),
			want: sasl.ReasonEKU, wantDetail: "(serverAuth) does not allow clientAuth"},
		{name: "error/unknown-critical-extension", der: unknownCriticalExtension, want: sasl.ReasonCriticalExtension, wantDetail: "1.3.6.1.4.1.55555.1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			account := tc.account
			if account.Equal(jid.JID{}) {
				account = alice
			}
			p := sasl.DefaultPolicy()
			if tc.policy != nil {
				p = *tc.policy
			}
			in := tc.der(t)
			u, err := sasl.CheckUpload(in, account, now, p)
			if tc.want != "" {
				var re *sasl.RefusalError
				if !errors.As(err, &re) {
					t.Fatalf("CheckUpload error = %v (%T), want a *RefusalError %s", err, err, tc.want)
				}
				t.Logf("%s: %s", re.Reason, re.Detail)
				if re.Reason != tc.want {
					t.Fatalf("Reason = %s (%s), want %s", re.Reason, re.Detail, tc.want)
				}
				if !strings.Contains(re.Detail, tc.wantDetail) {
					t.Errorf("Detail = %q, want it to contain %q", re.Detail, tc.wantDetail)
				}
				if re.Detail == "" || strings.ContainsAny(re.Detail, "\x00\n\r") {
					t.Errorf("Detail %q is empty or has control characters", re.Detail)
				}
				if u != nil {
					t.Errorf("CheckUpload returned %+v with an error", u)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckUpload: %v", err)
			}
			if !u.Account.Equal(account.Bare()) || u.Account.Resourcepart() != "" {
				t.Errorf("Account = %s, want %s", u.Account, account.Bare())
			}
			if u.Resource != tc.wantResource {
				t.Errorf("Resource = %q, want %q", u.Resource, tc.wantResource)
			}
			if !bytes.Equal(u.DER, in) || u.Fingerprint != storage.FingerprintOf(in) {
				t.Errorf("DER or Fingerprint do not match the input")
			}
			if len(in) > 0 && &u.DER[0] == &in[0] {
				t.Errorf("Upload.DER aliases the input")
			}
			if u.Cert == nil || u.SANs == nil {
				t.Errorf("Cert or SANs missing")
			}
		})
	}
}

// unknownCriticalExtension makes a certificate with a critical extension
// nobody understands.
func unknownCriticalExtension(tb testing.TB) []byte {
	tb.Helper()
	key := certtest.Key(tb, certtest.ECDSAP256)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "alice"},
		NotBefore:    certtest.Now.Add(-time.Hour),
		NotAfter:     certtest.Now.Add(time.Hour),
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		ExtraExtensions: []pkix.Extension{
			{Id: certtest.OIDSubjectAltName, Value: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org")}, nil)},
			{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Critical: true, Value: []byte{5, 0}},
		},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestCheckUploadAccountNotAUser(t *testing.T) {
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"example.org"}})
	for _, account := range []jid.JID{{}, jid.MustParse("example.org")} {
		_, err := sasl.CheckUpload(c.DER, account, certtest.Now, sasl.DefaultPolicy())
		var re *sasl.RefusalError
		if err == nil || errors.As(err, &re) {
			t.Errorf("CheckUpload for account %q: error %v, want a plain error", account, err)
		}
	}
}

func TestUploadRecord(t *testing.T) {
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"Alice@Example.org/Tablet"}})
	u, err := sasl.CheckUpload(c.DER, jid.MustParse("alice@example.org/phone"), certtest.Now, sasl.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	r := u.Record("laptop", true, storage.SourceUpload)
	want := storage.Cert{
		Account:          "alice@example.org",
		Name:             "laptop",
		Fingerprint:      storage.FingerprintOf(c.DER),
		NoCertManagement: true,
		Resource:         "Tablet",
		NotBefore:        c.Cert.NotBefore,
		NotAfter:         c.Cert.NotAfter,
		Issuer:           c.Cert.Issuer.String(),
		Source:           storage.SourceUpload,
	}
	if !bytes.Equal(r.DER, c.DER) {
		t.Errorf("Record DER differs")
	}
	r.DER = nil
	if !reflect.DeepEqual(*r, want) {
		t.Errorf("Record = %+v\nwant     %+v", *r, want)
	}
}

func TestRefusalError(t *testing.T) {
	e := &sasl.RefusalError{Reason: sasl.ReasonExpired, Detail: "the certificate expired"}
	if got, want := e.Error(), "sasl: certificate refused: the certificate expired"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
