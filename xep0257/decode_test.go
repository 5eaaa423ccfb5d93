package xep0257_test

import (
	"encoding/xml"
	"io"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/xep0257"
)

func TestDecode(t *testing.T) {
	const (
		cert = "<x509cert>MAMCAQA=</x509cert>"
		ns   = ` xmlns='urn:xmpp:saslcert:1'`
	)
	short := []byte{0x30, 0x03, 0x02, 0x01, 0x00}
	small := xep0257.Limits{MaxCertSize: 16, MaxNameLen: 8, MaxPerAccount: 1}
	bad := func(text string) wantErr { return wantErr{stanza.Modify, stanza.BadRequest, text} }
	unacceptable := func(text string) wantErr { return wantErr{stanza.Modify, stanza.NotAcceptable, text} }
	unknown := func(text string) wantErr { return wantErr{stanza.Cancel, stanza.FeatureNotImplemented, text} }

	for _, tc := range []struct {
		name   string
		typ    stanza.IQType
		xml    string
		limits xep0257.Limits // zero: defaults
		want   xep0257.Request
		err    wantErr
	}{
		// Accepted.
		{name: "ok/items", typ: "get", xml: `<items` + ns + `/>`, want: &xep0257.Items{XMLName: xItems}},
		{name: "ok/items/whitespace", typ: "get", xml: `<items` + ns + `>` + "\n  " + `</items>`, want: &xep0257.Items{XMLName: xItems}},
		{name: "ok/append", typ: "set", xml: `<append` + ns + `><name>a</name>` + cert + `</append>`,
			want: &xep0257.Append{XMLName: xAppend, Name: "a", Cert: short}},
		{name: "ok/append/attributes-ignored", typ: "set", xml: `<append` + ns + ` foo='bar'><name x='y'>a</name>` + cert + `</append>`,
			want: &xep0257.Append{XMLName: xAppend, Name: "a", Cert: short}},
		{name: "ok/append/name-at-limit", typ: "set", limits: small, xml: `<append` + ns + `><name>ééééééé📱</name>` + cert + `</append>`,
			want: &xep0257.Append{XMLName: xAppend, Name: "ééééééé📱", Cert: short}},
		{name: "ok/append/cert-at-limit", typ: "set", limits: small, xml: `<append` + ns + `><name>a</name><x509cert>MAMCAQAA MAMCAQA=</x509cert></append>`,
			want: &xep0257.Append{XMLName: xAppend, Name: "a", Cert: []byte{0x30, 0x03, 0x02, 0x01, 0x00, 0x00, 0x30, 0x03, 0x02, 0x01, 0x00}}},
		{name: "ok/disable", typ: "set", xml: `<disable` + ns + `><name> a b </name></disable>`, want: &xep0257.Disable{XMLName: xDisable, Name: "a b"}},
		{name: "ok/disable/longer-than-append-limit", typ: "set", limits: small, xml: `<disable` + ns + `><name>0123456789</name></disable>`,
			want: &xep0257.Disable{XMLName: xDisable, Name: "0123456789"}},
		{name: "ok/revoke", typ: "set", xml: `<revoke` + ns + `><name>a</name></revoke>`, want: &xep0257.Revoke{XMLName: xRevoke, Name: "a"}},

		// feature-not-implemented
		{name: "unknown/payload", typ: "set", xml: `<remove` + ns + `><name>a</name></remove>`, err: unknown("<remove/> is not a urn:xmpp:saslcert:1 request")},
		{name: "unknown/old-namespace", typ: "set", xml: `<append xmlns='urn:xmpp:saslcert:0'><name>a</name></append>`, err: unknown("urn:xmpp:saslcert:0")},
		{name: "unknown/item-as-request", typ: "get", xml: `<item` + ns + `/>`, err: unknown("<item/>")},

		// bad-request: IQ type
		{name: "type/items-set", typ: "set", xml: `<items` + ns + `/>`, err: bad("<items/> must be sent in an IQ of type get")},
		{name: "type/append-get", typ: "get", xml: `<append` + ns + `><name>a</name>` + cert + `</append>`, err: bad("<append/> must be sent in an IQ of type set")},
		{name: "type/disable-get", typ: "get", xml: `<disable` + ns + `><name>a</name></disable>`, err: bad("type set")},
		{name: "type/revoke-result", typ: "result", xml: `<revoke` + ns + `><name>a</name></revoke>`, err: bad("type set")},

		// bad-request: structure
		{name: "items/child", typ: "get", xml: `<items` + ns + `><item/></items>`, err: bad("unexpected element <item/> in <items/>")},
		{name: "items/text", typ: "get", xml: `<items` + ns + `>x</items>`, err: bad("<items/> must not contain text")},
		{name: "append/no-name", typ: "set", xml: `<append` + ns + `>` + cert + `</append>`, err: bad("<append/> has no <name/>")},
		{name: "append/no-cert", typ: "set", xml: `<append` + ns + `><name>a</name></append>`, err: bad("<append/> has no <x509cert/>")},
		{name: "append/empty", typ: "set", xml: `<append` + ns + `/>`, err: bad("<append/> has no <name/>")},
		{name: "append/empty-name", typ: "set", xml: `<append` + ns + `><name/>` + cert + `</append>`, err: bad("<name/> is empty")},
		{name: "append/empty-cert", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert/></append>`, err: bad("<x509cert/> is empty")},
		{name: "append/blank-cert", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>` + "\n \t" + `</x509cert></append>`, err: bad("<x509cert/> is empty")},
		{name: "append/two-names", typ: "set", xml: `<append` + ns + `><name>a</name><name>b</name>` + cert + `</append>`, err: bad("more than one <name/>")},
		{name: "append/two-certs", typ: "set", xml: `<append` + ns + `><name>a</name>` + cert + cert + `</append>`, err: bad("more than one <x509cert/>")},
		{name: "append/two-flags", typ: "set", xml: `<append` + ns + `><name>a</name><no-cert-management/><no-cert-management/>` + cert + `</append>`, err: bad("more than one <no-cert-management/>")},
		{name: "append/flag-with-text", typ: "set", xml: `<append` + ns + `><name>a</name><no-cert-management>yes</no-cert-management>` + cert + `</append>`, err: bad("<no-cert-management/> must be empty")},
		{name: "append/unknown-child", typ: "set", xml: `<append` + ns + `><name>a</name>` + cert + `<keyinfo/></append>`, err: bad("unexpected element <keyinfo/> in <append/>")},
		{name: "append/foreign-child", typ: "set", xml: `<append` + ns + `><name>a</name>` + cert + `<x xmlns='jabber:x:data'/></append>`, err: bad("unexpected element <x xmlns='jabber:x:data'/> in <append/>")},
		{name: "append/foreign-name", typ: "set", xml: `<append` + ns + `><name xmlns='urn:example'>a</name>` + cert + `</append>`, err: bad("unexpected element <name xmlns='urn:example'/>")},
		{name: "append/text", typ: "set", xml: `<append` + ns + `>hello<name>a</name>` + cert + `</append>`, err: bad("<append/> must not contain text")},
		{name: "append/element-in-name", typ: "set", xml: `<append` + ns + `><name>a<b/></name>` + cert + `</append>`, err: bad("<name/> must contain only text, not <b/>")},
		{name: "append/element-in-cert", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>MAMC<b/>AQA=</x509cert></append>`, err: bad("<x509cert/> must contain only text")},
		{name: "append/processing-instruction", typ: "set", xml: `<append` + ns + `><?pi x?><name>a</name>` + cert + `</append>`, err: bad("must contain only elements")},
		{name: "append/truncated", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>MAMC`, err: bad("ends early or is not well-formed")},
		{name: "append/mismatched-tags", typ: "set", xml: `<append` + ns + `><name>a</x509cert></append>`, err: bad("not well-formed")},
		{name: "disable/no-name", typ: "set", xml: `<disable` + ns + `/>`, err: bad("<disable/> has no <name/>")},
		{name: "disable/two-names", typ: "set", xml: `<disable` + ns + `><name>a</name><name>a</name></disable>`, err: bad("<disable/> has more than one <name/>")},
		{name: "disable/cert", typ: "set", xml: `<disable` + ns + `><name>a</name>` + cert + `</disable>`, err: bad("unexpected element <x509cert/> in <disable/>")},
		{name: "revoke/no-name", typ: "set", xml: `<revoke` + ns + `>  </revoke>`, err: bad("<revoke/> has no <name/>")},
		{name: "revoke/empty-name", typ: "set", xml: `<revoke` + ns + `><name></name></revoke>`, err: bad("<name/> is empty")},

		// not-acceptable: names
		{name: "name/blank", typ: "set", xml: `<append` + ns + `><name>  ` + "\n" + `</name>` + cert + `</append>`, err: unacceptable("name is blank")},
		{name: "name/too-long", typ: "set", limits: small, xml: `<append` + ns + `><name>123456789</name>` + cert + `</append>`, err: unacceptable("name is longer than 8 characters")},
		{name: "name/too-long/default", typ: "set", xml: `<append` + ns + `><name>` + strings.Repeat("x", 65) + `</name>` + cert + `</append>`, err: unacceptable("name is longer than 64 characters")},
		{name: "name/huge", typ: "set", xml: `<append` + ns + `><name>` + strings.Repeat("x", 1<<20) + `</name>` + cert + `</append>`, err: unacceptable("name is longer than 64 characters")},
		{name: "name/huge-disable", typ: "set", xml: `<disable` + ns + `><name>` + strings.Repeat("x", 1<<20) + `</name></disable>`, err: unacceptable("name is too long")},
		{name: "name/tab-inside", typ: "set", xml: `<append` + ns + `><name>a` + "\t" + `b</name>` + cert + `</append>`, err: unacceptable("control character")},
		{name: "name/newline-inside", typ: "set", xml: `<revoke` + ns + `><name>a` + "\n" + `b</name></revoke>`, err: unacceptable("control character")},
		{name: "name/c1-control", typ: "set", xml: `<append` + ns + `><name>a` + "\u0085" + `b</name>` + cert + `</append>`, err: unacceptable("control character")},
		{name: "name/char-ref-control", typ: "set", xml: `<disable` + ns + `><name>a&#x9;b</name></disable>`, err: unacceptable("control character")},

		// not-acceptable / policy-violation: certificates
		{name: "cert/bad-base64", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>MAMCAQA</x509cert></append>`, err: unacceptable("x509cert is not valid base64")},
		{name: "cert/url-alphabet", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>-_-_</x509cert></append>`, err: unacceptable("x509cert is not valid base64")},
		{name: "cert/url-alphabet-underscore", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>ab_c</x509cert></append>`, err: unacceptable("x509cert is not valid base64")},
		{name: "cert/pem", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>-----BEGIN CERTIFICATE-----
MAMCAQA=
-----END CERTIFICATE-----</x509cert></append>`, err: unacceptable("x509cert holds PEM; send the base64 of the DER certificate")},
		{name: "cert/pem-too-large", typ: "set", limits: small, xml: `<append` + ns + `><name>a</name><x509cert>-----BEGIN CERTIFICATE-----
MAMCAQA=
-----END CERTIFICATE-----</x509cert></append>`, err: unacceptable("PEM")},
		{name: "cert/too-large", typ: "set", limits: small, xml: `<append` + ns + `><name>a</name><x509cert>MAMCAQAAMAMCAQAAMAMC</x509cert></append>`,
			err: wantErr{stanza.Modify, stanza.PolicyViolation, "x509cert is larger than 16 bytes of base64"}},
		{name: "cert/too-large/default", typ: "set", xml: `<append` + ns + `><name>a</name><x509cert>` + strings.Repeat("A", 16<<10+4) + `</x509cert></append>`,
			err: wantErr{stanza.Modify, stanza.PolicyViolation, "x509cert is larger than 16384 bytes of base64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := xml.NewDecoder(strings.NewReader(tc.xml))
			tok, err := d.Token()
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.limits.Decode(tc.typ, tok.(xml.StartElement), d)
			checkErr(t, err, tc.err)
			if err != nil && got != nil {
				t.Errorf("Decode returned both %#v and an error", got)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode = %#v, want %#v", got, tc.want)
			}
		})
	}
}

// countingReader counts the tokens read through it.
type countingReader struct {
	r xml.TokenReader
	n int
}

func (c *countingReader) Token() (xml.Token, error) {
	c.n++
	return c.r.Token()
}

// TestDecodeStopsEarly checks that Decode stops reading at the first error
// rather than draining the payload.
func TestDecodeStopsEarly(t *testing.T) {
	var b strings.Builder
	b.WriteString(`<append xmlns='urn:xmpp:saslcert:1'><bogus/>`)
	for range 10000 {
		b.WriteString(`<name>a</name>`)
	}
	b.WriteString(`</append>`)
	d := xml.NewDecoder(strings.NewReader(b.String()))
	tok, _ := d.Token()
	c := &countingReader{r: d}
	_, err := xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), c)
	checkErr(t, err, wantErr{stanza.Modify, stanza.BadRequest, "unexpected element <bogus/>"})
	if c.n > 2 {
		t.Errorf("Decode read %d tokens, want at most 2", c.n)
	}

	// A huge certificate is refused once it passes the limit. (A reader
	// returns a run of text as one token, so the bound is per token; Prosody
	// bounds the stanza. Comments split the text here.)
	b.Reset()
	b.WriteString(`<append xmlns='urn:xmpp:saslcert:1'><name>a</name><x509cert>`)
	for range 10000 {
		b.WriteString(strings.Repeat("A", 1024) + "<!---->")
	}
	b.WriteString(`</x509cert></append>`)
	d = xml.NewDecoder(strings.NewReader(b.String()))
	tok, _ = d.Token()
	c = &countingReader{r: d}
	_, err = xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), c)
	checkErr(t, err, wantErr{stanza.Modify, stanza.PolicyViolation, "larger than 16384 bytes"})
	if c.n > 4+2*17 {
		t.Errorf("Decode read %d tokens, want at most %d", c.n, 4+2*17)
	}
}

// TestDecodeInnerReader checks a reader that ends at the payload's end
// (io.EOF instead of the end element), as xmlstream.Inner gives.
func TestDecodeInnerReader(t *testing.T) {
	d := xml.NewDecoder(strings.NewReader(`<disable xmlns='urn:xmpp:saslcert:1'><name>a</name></disable>`))
	tok, _ := d.Token()
	r := &untilEnd{r: d}
	got, err := xep0257.Decode(stanza.SetIQ, tok.(xml.StartElement), r)
	if err != nil || got.(*xep0257.Disable).Name != "a" {
		t.Fatalf("Decode = %#v, %v", got, err)
	}
}

// untilEnd returns io.EOF instead of the end of the outermost element.
type untilEnd struct {
	r     xml.TokenReader
	depth int
}

func (u *untilEnd) Token() (xml.Token, error) {
	tok, err := u.r.Token()
	switch tok.(type) {
	case xml.StartElement:
		u.depth++
	case xml.EndElement:
		if u.depth == 0 {
			return nil, io.EOF
		}
		u.depth--
	}
	return tok, err
}
