package sasl_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// FuzzParseSAN: ParseSAN never panics, reports malformed input as
// ErrMalformed, and every JID it returns is valid, free of control
// characters and re-parses to itself.
func FuzzParseSAN(f *testing.F) {
	upn := certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "admin@corp.example")
	seeds := [][]byte{
		nil,
		{0x30, 0x00},
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("juliet@example.org")}, []string{"example.org"}),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("Alice@EXAMPLE.org/Tablet"), certtest.XMPPAddr("bob@xn--bcher-kva.example")}, nil),
		certtest.SAN([]certtest.OtherName{upn}, nil),
		certtest.SAN([]certtest.OtherName{xmppOther(bmp("alice@example.org"))}, nil),
		certtest.SAN([]certtest.OtherName{xmppOther(certtest.TLV(cbasn1.IA5String, []byte("alice@example.org")))}, nil),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org\x00.evil")}, nil),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("a@b\uff0fc")}, nil),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("\u0430lice@example.org")}, nil),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("@example.org/")}, nil),
		certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("ﬀ@ⅸ.example/Ⅸ")}, nil),
		{0x30, 0x80, 0x00, 0x00},
		{0x30, 0x03, 0x80, 0x01, 0x00},
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ext []byte) {
		s, err := sasl.ParseSAN(ext)
		if err != nil {
			if !errors.Is(err, sasl.ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			if s != nil {
				t.Fatalf("ParseSAN returned %+v with an error", s)
			}
			return
		}
		for _, j := range s.XMPPAddrs {
			str := j.String()
			again, err := jid.Parse(str)
			if err != nil {
				t.Fatalf("returned JID %q does not parse: %v", str, err)
			}
			if !again.Equal(j) || again.String() != str {
				t.Fatalf("returned JID %q re-parses to %q", str, again)
			}
			if strings.ContainsFunc(str, unicode.IsControl) {
				t.Fatalf("returned JID %q contains a control character", str)
			}
		}
		for _, b := range s.BadAddrs {
			if b.Reason == "" || strings.ContainsFunc(b.Reason, unicode.IsControl) {
				t.Fatalf("BadAddr reason %q is empty or has control characters", b.Reason)
			}
		}
		for _, o := range s.OtherNames {
			if o.OID.Equal(sasl.OIDXMPPAddr) {
				t.Fatalf("an xmppAddr was reported as another otherName")
			}
		}
	})
}

// FuzzAuthorize: whatever the presented bytes and authzid, a grant implies
// that the bytes are exactly the DER of a stored active record, for that
// record's owner.
func FuzzAuthorize(f *testing.F) {
	fx := newAuthzFixture(f)
	a := fx.authorizer()
	for _, der := range [][]byte{fx.alice, fx.tablet, fx.multi, fx.disabled, fx.revoked, fx.expired, fx.bob, fx.unknown, fx.garbage, nil} {
		for _, authzid := range []string{"", "alice@example.org", "ALICE@example.org", "alice@example.org/tablet", "bob@example.org", "alice@example.net", "@"} {
			for _, domain := range []string{"", "example.org", "example.net"} {
				f.Add(der, authzid, domain)
			}
		}
	}
	flipped := bytes.Clone(fx.alice)
	flipped[len(flipped)/2] ^= 1
	f.Add(flipped, "", "")
	f.Add(append(bytes.Clone(fx.alice), 0), "", "")
	f.Add(fx.alice[:len(fx.alice)-1], "", "")

	f.Fuzz(func(t *testing.T, der []byte, authzid, domain string) {
		g, err := a.Authorize(t.Context(), sasl.Request{DER: der, Authzid: authzid, Domain: domain})
		// Naming the certificate by fingerprint decides the same.
		gf, errf := a.Authorize(t.Context(), sasl.Request{Fingerprint: storage.FingerprintOf(der), Authzid: authzid, Domain: domain})
		if (err == nil) != (errf == nil) || (err == nil && (!g.JID.Equal(gf.JID) || g.Resource != gf.Resource)) {
			if len(der) > 0 {
				t.Fatalf("by DER: %+v, %v; by fingerprint: %+v, %v", g, err, gf, errf)
			}
		}
		if err != nil {
			var fl *sasl.Failure
			if !errors.As(err, &fl) || fl.Condition == "" {
				t.Fatalf("error %v (%T) is not a *Failure with a condition", err, err)
			}
			return
		}
		rec, ferr := fx.store.FindCertByFingerprint(t.Context(), storage.FingerprintOf(der))
		if ferr != nil {
			t.Fatalf("granted %s for an unstored certificate", g.JID)
		}
		if !bytes.Equal(rec.DER, der) || rec.State != storage.StateActive {
			t.Fatalf("granted %s for a record that is not an exact active match", g.JID)
		}
		if g.JID.String() != rec.Account || g.Resource != rec.Resource || g.Fingerprint != rec.Fingerprint {
			t.Fatalf("grant %+v does not match the record %s", g, rec.Account)
		}
		if authzid != "" {
			if az, err := jid.Parse(authzid); err != nil || !az.Equal(g.JID) {
				t.Fatalf("granted %s for authzid %q", g.JID, authzid)
			}
		}
		c, _, perr := sasl.ParseCertificate(der)
		if perr != nil {
			t.Fatalf("granted an unparsable certificate: %v", perr)
		}
		if now := certtest.Now; now.After(c.NotAfter.Add(5*time.Minute)) || now.Before(c.NotBefore.Add(-5*time.Minute)) {
			t.Fatalf("granted a certificate that is not valid now")
		}
	})
}

// FuzzXMPPAddrString feeds arbitrary strings as UTF8String xmppAddrs, which
// reaches the JID checks far more often than raw DER does. Every string is
// either a usable JID that re-parses to itself or a BadAddr.
func FuzzXMPPAddrString(f *testing.F) {
	for _, s := range []string{"alice@example.org", "Alice@EXAMPLE.org/Tablet", "alice@xn--bcher-kva.example", "a@b\uff0fc",
		"\u0430lice@example.org", "ﬀ@ⅸ.example/Ⅸ", "alice@example.org.", "[::1]", "a@127.0.0.1", "a@b@c", "a/b@c", "\x00", "a@b\u200d.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		s, err := sasl.ParseSAN(certtest.SAN([]certtest.OtherName{certtest.XMPPAddr(addr)}, nil))
		if err != nil {
			t.Fatalf("ParseSAN: %v", err)
		}
		if len(s.XMPPAddrs)+len(s.BadAddrs) != 1 {
			t.Fatalf("%q gave %d JIDs and %d bad addresses, want one in all", addr, len(s.XMPPAddrs), len(s.BadAddrs))
		}
		for _, j := range s.XMPPAddrs {
			again, err := jid.Parse(j.String())
			if err != nil || !again.Equal(j) {
				t.Fatalf("%q normalised to %q, which re-parses to %q, %v", addr, j, again, err)
			}
			if strings.ContainsFunc(j.String(), unicode.IsControl) {
				t.Fatalf("%q normalised to %q with a control character", addr, j)
			}
		}
	})
}
