package xep0257_test

import (
	"encoding/xml"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

// FuzzDecode feeds random payloads to Decode. It must not panic, must return
// either a request or a stanza.Error, and an accepted request must be sane
// and survive a marshal/Decode round trip.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`<items xmlns='urn:xmpp:saslcert:1'/>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name>Mobile Client</name><x509cert>` + wrap64(xepCertB64, 64) + `</x509cert></append>`,
		`<append xmlns='urn:xmpp:saslcert:1'><x509cert>MAMCAQA=</x509cert><no-cert-management/><name> a </name></append>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name>a</name><x509cert>-----BEGIN CERTIFICATE-----</x509cert></append>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name>a</name><name>b</name></append>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name>a<b/></name></append>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name><![CDATA[x]]></name><x509cert>MA<!---->MC AQA=</x509cert></append>`,
		`<disable xmlns='urn:xmpp:saslcert:1'><name>Mobile Client</name></disable>`,
		`<revoke xmlns='urn:xmpp:saslcert:1'><name>&#x85;</name></revoke>`,
		`<revoke xmlns='urn:xmpp:saslcert:1'><name>x</name><x xmlns='y'/></revoke>`,
		`<remove xmlns='urn:xmpp:saslcert:1'/>`,
		`<append xmlns='urn:xmpp:saslcert:1'><name>a</name><x509cert>MAMC`,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	limits := xep0257.Limits{MaxCertSize: 4096, MaxNameLen: 16}
	f.Fuzz(func(t *testing.T, payload string, set bool) {
		d := xml.NewDecoder(strings.NewReader(payload))
		var start xml.StartElement
		for {
			tok, err := d.Token()
			if err != nil {
				return
			}
			if s, ok := tok.(xml.StartElement); ok {
				start = s.Copy()
				break
			}
		}
		typ := stanza.GetIQ
		if set {
			typ = stanza.SetIQ
		}
		req, err := limits.Decode(typ, start, d)
		if err != nil {
			if req != nil {
				t.Fatalf("Decode returned a request and an error: %#v, %v", req, err)
			}
			se, ok := err.(stanza.Error)
			if !ok || se.Type == "" || se.Condition == "" || se.Text[""] == "" {
				t.Fatalf("Decode error %#v is not a complete stanza.Error", err)
			}
			return
		}
		var name string
		var tr interface{ TokenReader() xml.TokenReader }
		switch r := req.(type) {
		case *xep0257.Items:
			tr = r
		case *xep0257.Append:
			if len(r.Cert) == 0 {
				t.Fatalf("accepted an append without a certificate: %#v", r)
			}
			name, tr = r.Name, r
		case *xep0257.Disable:
			name, tr = r.Name, r
		case *xep0257.Revoke:
			name, tr = r.Name, r
		default:
			t.Fatalf("Decode returned %T", req)
		}
		if _, ok := req.(*xep0257.Items); !ok {
			if name == "" || strings.TrimSpace(name) != name || !utf8.ValidString(name) {
				t.Fatalf("accepted name %q", name)
			}
		}
		if a, ok := req.(*xep0257.Append); ok && utf8.RuneCountInString(a.Name) > limits.MaxNameLen {
			t.Fatalf("accepted a name of %d characters", utf8.RuneCountInString(a.Name))
		}
		// Round trip.
		s := encode(t, tr.TokenReader())
		d = xml.NewDecoder(strings.NewReader(s))
		tok, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		again, err := limits.Decode(typ, tok.(xml.StartElement), d)
		if err != nil || !reflect.DeepEqual(again, req) {
			t.Fatalf("round trip of %#v through %s: %#v, %v", req, s, again, err)
		}
	})
}
