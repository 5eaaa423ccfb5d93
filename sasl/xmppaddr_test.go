package sasl_test

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
)

// bmp encodes s as a BMPString value.
func bmp(s string) []byte {
	var b []byte
	for _, u := range utf16.Encode([]rune(s)) {
		b = append(b, byte(u>>8), byte(u))
	}
	return certtest.TLV(cbasn1.Tag(30), b)
}

// xmppOther is an id-on-xmppAddr otherName with an arbitrary value.
func xmppOther(value []byte) certtest.OtherName {
	return certtest.OtherName{OID: certtest.OIDXMPPAddr, Value: value}
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestParseSAN(t *testing.T) {
	upn := certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "admin@corp.example")
	tests := []struct {
		name      string
		ext       []byte
		wantErr   bool
		wantJIDs  []string
		wantBad   []string // substrings of the BadAddr reasons, in order
		wantOther []asn1.ObjectIdentifier
		wantDNS   []string
	}{
		{
			// GO-LIBRARIES.md §6: byte-identical to openssl's output.
			name:     "ok/openssl-reference",
			ext:      mustHex(t, "302fa02006082b06010505070805a0140c126a756c696574406578616d706c652e6f7267820b6578616d706c652e6f7267"),
			wantJIDs: []string{"juliet@example.org"},
			wantDNS:  []string{"example.org"},
		},
		{
			name:     "ok/order-kept",
			ext:      certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("b@example.org"), certtest.XMPPAddr("a@example.org/r")}, nil),
			wantJIDs: []string{"b@example.org", "a@example.org/r"},
		},
		{
			name:     "ok/uppercase-normalised",
			ext:      certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("Alice@EXAMPLE.Org")}, nil),
			wantJIDs: []string{"alice@example.org"},
		},
		{
			name:     "ok/a-label-to-u-label",
			ext:      certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@xn--bcher-kva.example")}, nil),
			wantJIDs: []string{"alice@bücher.example"},
		},
		{
			name:     "ok/trailing-dot-stripped",
			ext:      certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org.")}, nil),
			wantJIDs: []string{"alice@example.org"},
		},
		{
			name:      "ok/upn-is-not-a-jid",
			ext:       certtest.SAN([]certtest.OtherName{upn}, nil),
			wantOther: []asn1.ObjectIdentifier{certtest.OIDMicrosoftUPN},
		},
		{
			name:      "ok/upn-and-xmppaddr",
			ext:       certtest.SAN([]certtest.OtherName{upn, certtest.XMPPAddr("alice@example.org")}, []string{"example.org"}),
			wantJIDs:  []string{"alice@example.org"},
			wantOther: []asn1.ObjectIdentifier{certtest.OIDMicrosoftUPN},
			wantDNS:   []string{"example.org"},
		},
		{
			name: "ok/empty-sequence",
			ext:  []byte{0x30, 0x00},
		},
		{
			name: "ok/other-general-names-ignored",
			// rfc822Name, URI, iPAddress
			ext: concatSeq(certtest.TLV(cbasn1.Tag(1).ContextSpecific(), []byte("a@b.c")),
				certtest.TLV(cbasn1.Tag(6).ContextSpecific(), []byte("xmpp:a@b.c")),
				certtest.TLV(cbasn1.Tag(7).ContextSpecific(), []byte{127, 0, 0, 1})),
		},
		{name: "bad/bmpstring", ext: certtest.SAN([]certtest.OtherName{xmppOther(bmp("alice@example.org"))}, nil), wantBad: []string{"not a UTF8String (BMPString)"}},
		{name: "bad/ia5string", ext: certtest.SAN([]certtest.OtherName{xmppOther(certtest.TLV(cbasn1.IA5String, []byte("alice@example.org")))}, nil), wantBad: []string{"not a UTF8String (IA5String)"}},
		{name: "bad/printablestring", ext: certtest.SAN([]certtest.OtherName{xmppOther(certtest.TLV(cbasn1.PrintableString, []byte("example.org")))}, nil), wantBad: []string{"PrintableString"}},
		{name: "bad/two-forms-sharp-s", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("straße@example.org")}, nil), wantBad: []string{`"strasse" for the XMPP server`}},
		{name: "bad/two-forms-final-sigma", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("σοφίας@example.org")}, nil), wantBad: []string{"RFC 3920 nodeprep"}},
		{name: "bad/two-forms-resource", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org/ﬀ")}, nil), wantBad: []string{"RFC 3920 resourceprep"}},
		{name: "bad/nul", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org\x00.evil.example")}, nil), wantBad: []string{"NUL"}},
		{name: "bad/control", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org\n")}, nil), wantBad: []string{"control character U+000A"}},
		{name: "bad/c1-control", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice\u0085@example.org")}, nil), wantBad: []string{"control character U+0085"}},
		{name: "bad/invalid-utf8", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@\xff.example")}, nil), wantBad: []string{"UTF-8"}},
		{name: "bad/empty", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("")}, nil), wantBad: []string{"empty"}},
		{name: "bad/empty-localpart", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("@example.org")}, nil), wantBad: []string{"invalid JID"}},
		{name: "bad/space", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice smith@example.org")}, nil), wantBad: []string{"invalid JID"}},
		{name: "bad/forbidden-localpart-char", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("a<b@example.org")}, nil), wantBad: []string{"invalid JID"}},
		{name: "bad/empty-resource", ext: certtest.SAN([]certtest.OtherName{certtest.XMPPAddr("alice@example.org/")}, nil), wantBad: []string{"invalid JID"}},
		{
			name:     "bad/next-to-good",
			ext:      certtest.SAN([]certtest.OtherName{xmppOther(bmp("mallory@example.org")), certtest.XMPPAddr("alice@example.org")}, nil),
			wantJIDs: []string{"alice@example.org"},
			wantBad:  []string{"BMPString"},
		},
		{name: "error/empty-input", ext: nil, wantErr: true},
		{name: "error/not-a-sequence", ext: certtest.TLV(cbasn1.SET, nil), wantErr: true},
		{name: "error/truncated", ext: mustHex(t, "302fa02006082b06010505070805a0140c126a756c"), wantErr: true},
		{name: "error/trailing-bytes", ext: append(certtest.SAN(nil, []string{"example.org"}), 0), wantErr: true},
		{name: "error/indefinite-length", ext: []byte{0x30, 0x80, 0x00, 0x00}, wantErr: true},
		{name: "error/non-minimal-length", ext: []byte{0x30, 0x81, 0x00}, wantErr: true},
		{name: "error/primitive-othername", ext: concatSeq(certtest.TLV(cbasn1.Tag(0).ContextSpecific(), []byte{6, 1, 0})), wantErr: true},
		{
			name:    "error/othername-without-oid",
			ext:     concatSeq(certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), certtest.TLV(cbasn1.UTF8String, []byte("a@b"))))),
			wantErr: true,
		},
		{
			name:    "error/othername-implicit-value",
			ext:     concatSeq(certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), concat(certtest.TLV(cbasn1.OBJECT_IDENTIFIER, mustHex(t, "2b06010505070805")), certtest.TLV(cbasn1.Tag(0).ContextSpecific(), []byte("a@b"))))),
			wantErr: true,
		},
		{
			name: "error/othername-two-values",
			ext: concatSeq(certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), concat(certtest.TLV(cbasn1.OBJECT_IDENTIFIER, mustHex(t, "2b06010505070805")),
				certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), concat(certtest.TLV(cbasn1.UTF8String, []byte("a@b")), certtest.TLV(cbasn1.UTF8String, []byte("c@d"))))))),
			wantErr: true,
		},
		{
			name: "error/othername-empty-wrapper",
			ext: concatSeq(certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), concat(certtest.TLV(cbasn1.OBJECT_IDENTIFIER, mustHex(t, "2b06010505070805")),
				certtest.TLV(cbasn1.Tag(0).Constructed().ContextSpecific(), nil)))),
			wantErr: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := sasl.ParseSAN(tc.ext)
			if tc.wantErr {
				if err == nil {
					t.Fatalf("ParseSAN = %+v, want an error", s)
				}
				if !errors.Is(err, sasl.ErrMalformed) {
					t.Errorf("error %v does not wrap ErrMalformed", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSAN: %v", err)
			}
			var got []string
			for _, j := range s.XMPPAddrs {
				got = append(got, j.String())
			}
			if !slices.Equal(got, tc.wantJIDs) {
				t.Errorf("XMPPAddrs = %q, want %q", got, tc.wantJIDs)
			}
			if len(s.BadAddrs) != len(tc.wantBad) {
				t.Fatalf("BadAddrs = %+v, want %d", s.BadAddrs, len(tc.wantBad))
			}
			for i, b := range s.BadAddrs {
				if !strings.Contains(b.Reason, tc.wantBad[i]) {
					t.Errorf("BadAddrs[%d].Reason = %q, want it to contain %q", i, b.Reason, tc.wantBad[i])
				}
				if len(b.Value) == 0 {
					t.Errorf("BadAddrs[%d].Value is empty", i)
				}
				if strings.ContainsAny(b.Reason, "\x00\n") {
					t.Errorf("BadAddrs[%d].Reason %q contains raw control characters", i, b.Reason)
				}
			}
			var others []asn1.ObjectIdentifier
			for _, o := range s.OtherNames {
				others = append(others, o.OID)
			}
			if !slices.EqualFunc(others, tc.wantOther, asn1.ObjectIdentifier.Equal) {
				t.Errorf("OtherNames = %v, want %v", others, tc.wantOther)
			}
			if !slices.Equal(s.DNSNames, tc.wantDNS) {
				t.Errorf("DNSNames = %q, want %q", s.DNSNames, tc.wantDNS)
			}
		})
	}
}

// concatSeq wraps GeneralNames in a SEQUENCE.
func concatSeq(names ...[]byte) []byte { return certtest.TLV(cbasn1.SEQUENCE, concat(names...)) }

func TestParseSANOtherNameValue(t *testing.T) {
	upn := certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, "admin@corp.example")
	s, err := sasl.ParseSAN(certtest.SAN([]certtest.OtherName{upn, xmppOther(bmp("a@b.example"))}, nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.OtherNames[0].Value; string(got) != string(upn.Value) {
		t.Errorf("OtherNames[0].Value = %x, want %x", got, upn.Value)
	}
	if got, want := s.BadAddrs[0].Value, bmp("a@b.example"); string(got) != string(want) {
		t.Errorf("BadAddrs[0].Value = %x, want %x", got, want)
	}
}

func TestCertSANs(t *testing.T) {
	tests := []struct {
		name         string
		opts         certtest.Options
		wantJIDs     int
		wantCritical bool
	}{
		{name: "no-san", opts: certtest.Options{}},
		{name: "xmppaddr", opts: certtest.Options{XMPPAddrs: []string{"alice@example.org"}}, wantJIDs: 1},
		{name: "critical", opts: certtest.Options{XMPPAddrs: []string{"alice@example.org"}, CriticalSAN: true}, wantJIDs: 1, wantCritical: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := certtest.New(t, tc.opts)
			s, err := sasl.CertSANs(c.Cert)
			if err != nil {
				t.Fatal(err)
			}
			if len(s.XMPPAddrs) != tc.wantJIDs || s.Critical != tc.wantCritical {
				t.Errorf("CertSANs = %+v, want %d JIDs, critical %v", s, tc.wantJIDs, tc.wantCritical)
			}
		})
	}
}

func TestParseCertificate(t *testing.T) {
	alice := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	bob := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"}})
	critical := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, CriticalSAN: true})
	tests := []struct {
		name      string
		der       []byte
		wantErr   error
		wantChain bool
	}{
		{name: "ok", der: alice.DER},
		{name: "ok/critical-othername-only-san", der: critical.DER},
		{name: "error/empty", der: nil, wantErr: sasl.ErrMalformed},
		{name: "error/garbage", der: []byte("-----BEGIN CERTIFICATE-----"), wantErr: sasl.ErrMalformed},
		{name: "error/truncated", der: alice.DER[:len(alice.DER)-1], wantErr: sasl.ErrMalformed},
		{name: "error/not-a-certificate", der: certtest.TLV(cbasn1.SEQUENCE, []byte{2, 1, 0}), wantErr: sasl.ErrMalformed},
		{name: "error/chain", der: concat(alice.DER, bob.DER), wantErr: sasl.ErrTrailingData, wantChain: true},
		{name: "error/trailing-zero", der: concat(alice.DER, []byte{0}), wantErr: sasl.ErrTrailingData},
		{name: "error/trailing-newline", der: concat(alice.DER, []byte("\n")), wantErr: sasl.ErrTrailingData},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cert, sans, err := sasl.ParseCertificate(tc.der)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("ParseCertificate error = %v, want %v", err, tc.wantErr)
				}
				if got := strings.Contains(err.Error(), "another certificate"); got != tc.wantChain {
					t.Errorf("error %q: mentions a chain = %v, want %v", err, got, tc.wantChain)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(sans.XMPPAddrs) != 1 || !sans.XMPPAddrs[0].Equal(jid.MustParse("alice@example.org")) {
				t.Errorf("XMPPAddrs = %v", sans.XMPPAddrs)
			}
			if len(cert.UnhandledCriticalExtensions) != 0 {
				t.Errorf("UnhandledCriticalExtensions = %v, want none", cert.UnhandledCriticalExtensions)
			}
		})
	}
}

// TestParseCertificateCriticalSAN shows why ParseCertificate clears the SAN
// from UnhandledCriticalExtensions: crypto/x509 alone refuses the
// certificate in Verify.
func TestParseCertificateCriticalSAN(t *testing.T) {
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, CriticalSAN: true})
	plain, err := x509.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(plain.UnhandledCriticalExtensions, sasl.OIDSubjectAltName.Equal) {
		t.Skip("crypto/x509 now handles otherName-only critical SANs itself")
	}
	cert, _, err := sasl.ParseCertificate(c.DER)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	_, err = cert.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: certtest.Now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	var unhandled x509.UnhandledCriticalExtension
	if errors.As(err, &unhandled) {
		t.Errorf("Verify after ParseCertificate: %v", err)
	}
}
