package est

import (
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/saslcert/saslcert/internal/certtest"
)

// certsOnly builds a DER degenerate SignedData holding ders (test helper;
// extra, if set, is added to the certificates SET as is).
func certsOnly(ders [][]byte, extra []byte) []byte {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidSignedData)
		b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Int64(1)
				b.AddASN1(cbasn1.SET, func(*cryptobyte.Builder) {})
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1ObjectIdentifier(asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 1})
				})
				b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) {
					for _, d := range ders {
						b.AddBytes(d)
					}
					b.AddBytes(extra)
				})
				b.AddASN1(cbasn1.SET, func(*cryptobyte.Builder) {})
			})
		})
	})
	return b.BytesOrPanic()
}

func TestEnrollESTParseCertsOnly(t *testing.T) {
	ca := certtest.NewCA(t, "EST test CA")
	leaf := certtest.New(t, certtest.Options{CommonName: "alice@example.org", XMPPAddrs: []string{"alice@example.org"}, Parent: ca})
	good := certsOnly([][]byte{leaf.DER, ca.DER}, nil)
	// An attribute certificate ([2] IMPLICIT) among the certificates is skipped.
	withAttr := certsOnly([][]byte{leaf.DER}, certtest.TLV(cbasn1.Tag(2).Constructed().ContextSpecific(), []byte{0x05, 0x00}))
	wrongType := []byte(strings.Replace(string(good), string([]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02}),
		string([]byte{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03}), 1))
	tests := []struct {
		name string
		der  []byte
		want int
	}{
		{"ok/two", good, 2},
		{"ok/attribute-cert-skipped", withAttr, 1},
		{"error/empty", nil, 0},
		{"error/truncated", good[:len(good)-3], 0},
		{"error/trailing", append(append([]byte(nil), good...), 0), 0},
		{"error/enveloped-data", wrongType, 0},
		{"error/no-certs", certsOnly(nil, nil), 0},
		{"error/bad-cert", certsOnly([][]byte{certtest.TLV(cbasn1.SEQUENCE, []byte{0x02, 0x01, 0x01})}, nil), 0},
		{"error/not-asn1", []byte("hello"), 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			certs, err := parseCertsOnly(tc.der)
			if tc.want == 0 {
				if !errors.Is(err, ErrPKCS7) {
					t.Fatalf("err = %v, want ErrPKCS7", err)
				}
				return
			}
			if err != nil || len(certs) != tc.want {
				t.Fatalf("got %d certs, %v; want %d", len(certs), err, tc.want)
			}
			if !certs[0].Equal(leaf.Cert) {
				t.Error("first certificate is not the leaf")
			}
		})
	}
}

func TestEnrollESTDecodeBase64(t *testing.T) {
	der := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	enc := base64.StdEncoding.EncodeToString(der)
	got, err := decodeBase64([]byte(" " + enc[:4] + "\r\n" + enc[4:] + "\n"))
	if err != nil || string(got) != string(der) {
		t.Fatalf("decodeBase64 = %x, %v", got, err)
	}
	if _, err := decodeBase64([]byte("!!!")); !errors.Is(err, ErrPKCS7) {
		t.Fatalf("bad base64: err = %v", err)
	}
}

func FuzzParseCertsOnly(f *testing.F) {
	ca := certtest.NewCA(f, "EST test CA")
	f.Add(certsOnly([][]byte{ca.DER}, nil))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		certs, err := parseCertsOnly(der)
		if err == nil && len(certs) == 0 {
			t.Fatal("no error and no certificates")
		}
		for _, c := range certs {
			if _, err := x509.ParseCertificate(c.Raw); err != nil {
				t.Fatal(err)
			}
		}
	})
}
