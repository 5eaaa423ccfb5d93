package sasl_test

import (
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

func BenchmarkCheckUpload(b *testing.B) {
	alice := jid.MustParse("alice@example.org")
	for _, kt := range []certtest.KeyType{certtest.ECDSAP256, certtest.RSA2048, certtest.Ed25519} {
		b.Run(string(kt), func(b *testing.B) {
			der := certtest.New(b, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyType: kt}).DER
			p := sasl.DefaultPolicy()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := sasl.CheckUpload(der, alice, certtest.Now, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseSAN(b *testing.B) {
	ext := certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org")}, nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := sasl.ParseSAN(ext); err != nil {
			b.Fatal(err)
		}
	}
}

// benchStore fills an in-memory finder with n active P-256 certificates
// (plus the one to present) and returns it with the presented DER.
func benchStore(b *testing.B, n int, kt certtest.KeyType) (*memFinder, []byte) {
	b.Helper()
	key := certtest.Key(b, kt)
	s := newMemFinder()
	for i := range n {
		acct := fmt.Sprintf("user%d@example.org", i)
		c, err := certtest.Make(certtest.Options{XMPPAddrs: []string{acct}, Key: key})
		if err != nil {
			b.Fatal(err)
		}
		s.add(c.DER, acct, storage.StateActive, "")
	}
	c := certtest.New(b, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, KeyType: kt})
	s.add(c.DER, "alice@example.org", storage.StateActive, "")
	return s, c.DER
}

// BenchmarkAuthorize measures one decision (fingerprint, lookup in an
// in-memory map, DER comparison, x509 parse, SAN, authzid rules). The
// SQLite-backed figures live with storage/sqlite.
func BenchmarkAuthorize(b *testing.B) {
	for _, kt := range []certtest.KeyType{certtest.ECDSAP256, certtest.RSA2048} {
		s, der := benchStore(b, 1000, kt)
		a := &sasl.Authorizer{Store: s, Now: func() time.Time { return certtest.Now }, Policy: sasl.Policy{ClockSkew: 5 * time.Minute}}
		for _, authzid := range []string{"", "alice@example.org"} {
			name := string(kt) + "/no-authzid"
			if authzid != "" {
				name = string(kt) + "/authzid"
			}
			req := sasl.Request{DER: der, Authzid: authzid, Domain: "example.org"}
			b.Run(name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := a.Authorize(b.Context(), req); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if _, err := a.Authorize(b.Context(), req); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
	b.Run("unknown", func(b *testing.B) {
		s, _ := benchStore(b, 10, certtest.ECDSAP256)
		a := &sasl.Authorizer{Store: s, Now: func() time.Time { return certtest.Now }}
		req := sasl.Request{DER: certtest.New(b, certtest.Options{XMPPAddrs: []string{"mallory@example.org"}}).DER}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := a.Authorize(b.Context(), req); err == nil {
				b.Fatal("unknown certificate authorized")
			}
		}
	})
}
