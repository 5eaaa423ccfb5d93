package xep0257_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/xep0257"
)

func BenchmarkDecodeAppend(b *testing.B) {
	der := certFor(b, "alice@example.org")
	payload := `<append xmlns='urn:xmpp:saslcert:1'><name>Mobile Client</name><x509cert>` + wrap64(b64(der), 64) + `</x509cert></append>`
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		d := xml.NewDecoder(strings.NewReader(payload))
		tok, err := d.Token()
		if err != nil {
			b.Fatal(err)
		}
		if _, err := xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), d); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcessItems(b *testing.B) {
	db := openStore(b)
	h := &xep0257.Handler{Store: db, Now: now}
	for i := range 5 {
		_, err := h.Process(context.Background(), alice, passwordAuth, &xep0257.Append{Name: fmt.Sprint("cert ", i), Cert: certFor(b, "alice@example.org")})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		r, err := h.Process(context.Background(), alice, passwordAuth, &xep0257.Items{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := xmlstream.Copy(xmlstream.Discard(), r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProcessAppend stores one new certificate per iteration (each for
// a new account, so the per-account limit never applies), durably.
func BenchmarkProcessAppend(b *testing.B) {
	db := openStore(b)
	h := &xep0257.Handler{Store: db, Now: now}
	key := certtest.Key(b, certtest.ECDSAP256)
	from := make([]jid.JID, b.N)
	reqs := make([]*xep0257.Append, b.N)
	for i := range b.N {
		acct := fmt.Sprintf("user%d@example.org", i)
		c, err := certtest.Make(certtest.Options{XMPPAddrs: []string{acct}, Key: key})
		if err != nil {
			b.Fatal(err)
		}
		from[i] = jid.MustParse(acct + "/bench")
		reqs[i] = &xep0257.Append{Name: "Phone", Cert: c.DER}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		if _, err := h.Process(context.Background(), from[i], passwordAuth, reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
}
