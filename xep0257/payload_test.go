package xep0257_test

import (
	"encoding/base64"
	"encoding/xml"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/xmpptest"
	"github.com/saslcert/saslcert/xep0257"
)

var (
	_ xml.Marshaler       = xep0257.Items{}
	_ xmlstream.WriterTo  = xep0257.Items{}
	_ xmlstream.Marshaler = xep0257.Items{}
	_ xml.Marshaler       = xep0257.Item{}
	_ xml.Unmarshaler     = (*xep0257.Item)(nil)
	_ xml.Marshaler       = xep0257.Append{}
	_ xml.Unmarshaler     = (*xep0257.Append)(nil)
	_ xmlstream.WriterTo  = xep0257.Append{}
	_ xmlstream.Marshaler = xep0257.Disable{}
	_ xml.Unmarshaler     = (*xep0257.Disable)(nil)
	_ xmlstream.Marshaler = xep0257.Revoke{}
	_ xml.Unmarshaler     = (*xep0257.Revoke)(nil)
)

var (
	xItems   = xml.Name{Space: xep0257.NS, Local: "items"}
	xItem    = xml.Name{Space: xep0257.NS, Local: "item"}
	xAppend  = xml.Name{Space: xep0257.NS, Local: "append"}
	xDisable = xml.Name{Space: xep0257.NS, Local: "disable"}
	xRevoke  = xml.Name{Space: xep0257.NS, Local: "revoke"}
)

func xepDER(tb testing.TB) []byte {
	tb.Helper()
	der, err := base64.StdEncoding.DecodeString(xepCertB64)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func TestEncoding(t *testing.T) {
	der := xepDER(t)
	short := []byte{0x30, 0x03, 0x02, 0x01, 0x00} // any bytes: payloads do not parse certificates
	wrapped := wrap64(xepCertB64, 64)
	xmpptest.RunEncoding(t, []xmpptest.EncodingCase{{
		Name:  "items/request",
		Value: &xep0257.Items{XMLName: xItems},
		XML:   `<items xmlns="urn:xmpp:saslcert:1"></items>`,
	}, {
		Name: "items/result",
		Value: &xep0257.Items{XMLName: xItems, Items: []xep0257.Item{
			{XMLName: xItem, Name: "Mobile Client", Cert: der, Users: []string{"Phone", "Tablet"}},
			{XMLName: xItem, Name: "Laptop", Cert: short, NoCertManagement: true},
		}},
		XML: `<items xmlns="urn:xmpp:saslcert:1">` +
			`<item><name>Mobile Client</name><x509cert>` + xepCertB64 + `</x509cert>` +
			`<users><resource>Phone</resource><resource>Tablet</resource></users></item>` +
			`<item><name>Laptop</name><x509cert>MAMCAQA=</x509cert><no-cert-management></no-cert-management></item>` +
			`</items>`,
	}, {
		Name:  "item/standalone",
		Value: &xep0257.Item{XMLName: xItem, Name: "a & <b>", Cert: short},
		XML:   `<item xmlns="urn:xmpp:saslcert:1"><name>a &amp; &lt;b&gt;</name><x509cert>MAMCAQA=</x509cert></item>`,
	}, {
		Name:        "item/whitespace-in-x509cert",
		NoMarshal:   true,
		Value:       &xep0257.Item{XMLName: xItem, Name: "Mobile Client", Cert: der, Users: []string{"Phone"}},
		XML:         "<item xmlns='urn:xmpp:saslcert:1'>\n  <name>Mobile Client</name>\n  <x509cert>" + strings.ReplaceAll(wrapped, "      ", "\t") + "</x509cert>\n  <users>\n    <resource>Phone</resource>\n  </users>\n  <unknown-extension/>\n</item>",
		NoUnmarshal: false,
	}, {
		Name:  "append",
		Value: &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: der},
		XML:   `<append xmlns="urn:xmpp:saslcert:1"><name>Mobile Client</name><x509cert>` + xepCertB64 + `</x509cert></append>`,
	}, {
		Name:  "append/no-cert-management",
		Value: &xep0257.Append{XMLName: xAppend, Name: "Simple Bot", Cert: short, NoCertManagement: true},
		XML:   `<append xmlns="urn:xmpp:saslcert:1"><name>Simple Bot</name><no-cert-management></no-cert-management><x509cert>MAMCAQA=</x509cert></append>`,
	}, {
		Name:      "append/whitespace-in-x509cert",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: der},
		XML:       "<append xmlns='urn:xmpp:saslcert:1'>\n    <name>Mobile Client</name>\n    <x509cert>" + wrapped + "</x509cert>\n  </append>",
	}, {
		Name:      "append/crlf-and-tabs",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: der},
		XML:       "<append xmlns='urn:xmpp:saslcert:1'><name>Mobile Client</name><x509cert>\r\n\t" + xepCertB64[:10] + "\t \r\n" + xepCertB64[10:] + "&#x20;&#xA;</x509cert></append>",
	}, {
		Name:      "append/child-order-cert-first",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Bot", Cert: short, NoCertManagement: true},
		XML:       `<append xmlns='urn:xmpp:saslcert:1'><x509cert>MAMCAQA=</x509cert><no-cert-management/><name>Bot</name></append>`,
	}, {
		Name:      "append/slixmpp-shape",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Simple Bot", Cert: der, NoCertManagement: true},
		XML:       `<append xmlns="urn:xmpp:saslcert:1"><name>Simple Bot</name><x509cert>` + xepCertB64 + `</x509cert><no-cert-management /></append>`,
	}, {
		Name:      "append/name-trimmed",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: short},
		XML:       "<append xmlns='urn:xmpp:saslcert:1'><name>\n      Mobile Client\n    </name><x509cert>MAMCAQA=</x509cert></append>",
	}, {
		Name:      "append/cdata-and-comment",
		NoMarshal: true,
		Value:     &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: short},
		XML:       "<append xmlns='urn:xmpp:saslcert:1'><!-- c --><name><![CDATA[Mobile Client]]></name><x509cert>MAMC<!-- c -->AQA=</x509cert></append>",
	}, {
		Name:  "disable",
		Value: &xep0257.Disable{XMLName: xDisable, Name: "Mobile Client"},
		XML:   `<disable xmlns="urn:xmpp:saslcert:1"><name>Mobile Client</name></disable>`,
	}, {
		Name:  "revoke",
		Value: &xep0257.Revoke{XMLName: xRevoke, Name: "Mobile Client"},
		XML:   `<revoke xmlns="urn:xmpp:saslcert:1"><name>Mobile Client</name></revoke>`,
	}, {
		Name:  "revoke/unicode-name",
		Value: &xep0257.Revoke{XMLName: xRevoke, Name: "Téléphone 📱"},
		XML:   `<revoke xmlns="urn:xmpp:saslcert:1"><name>Téléphone 📱</name></revoke>`,
	}})
}

// TestUnmarshalStrict checks that the UnmarshalXML methods apply Decode's
// rules and return stanza errors.
func TestUnmarshalStrict(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		xml  string
		want stanza.Condition
	}{
		{"append/no-name", &xep0257.Append{}, `<append xmlns="urn:xmpp:saslcert:1"><x509cert>MAMCAQA=</x509cert></append>`, stanza.BadRequest},
		{"append/bad-base64", &xep0257.Append{}, `<append xmlns="urn:xmpp:saslcert:1"><name>a</name><x509cert>M!</x509cert></append>`, stanza.NotAcceptable},
		{"append/wrong-element", &xep0257.Append{}, `<revoke xmlns="urn:xmpp:saslcert:1"><name>a</name></revoke>`, stanza.BadRequest},
		{"disable/extra-child", &xep0257.Disable{}, `<disable xmlns="urn:xmpp:saslcert:1"><name>a</name><x/></disable>`, stanza.BadRequest},
		{"revoke/blank", &xep0257.Revoke{}, `<revoke xmlns="urn:xmpp:saslcert:1"><name> </name></revoke>`, stanza.NotAcceptable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := xml.Unmarshal([]byte(tc.xml), tc.v)
			var se stanza.Error
			if !asStanzaError(err, &se) || se.Condition != tc.want {
				t.Fatalf("Unmarshal: %v, want a stanza error %s", err, tc.want)
			}
		})
	}
}

// TestItemBadBase64 checks that a client reading a reply with a broken
// certificate gets a plain error, not one that looks like the server's.
func TestItemBadBase64(t *testing.T) {
	var it xep0257.Item
	err := xml.Unmarshal([]byte(`<item xmlns="urn:xmpp:saslcert:1"><name>a</name><x509cert>...</x509cert></item>`), &it)
	var se stanza.Error
	if err == nil || asStanzaError(err, &se) || !strings.Contains(err.Error(), `<x509cert/> of item "a" is not valid base64`) {
		t.Fatalf("Unmarshal = %v, want a plain base64 error", err)
	}
}

func asStanzaError(err error, se *stanza.Error) bool {
	e, ok := err.(stanza.Error)
	if ok {
		*se = e
	}
	return ok
}

// decodeIQ decodes the payload of the IQ in s with the limits l.
func decodeIQ(tb testing.TB, s string, l xep0257.Limits) (xep0257.Request, error) {
	tb.Helper()
	d := xml.NewDecoder(strings.NewReader(s))
	iqStart, payload := iqAndPayload(tb, d)
	iq, err := stanza.NewIQ(iqStart)
	if err != nil {
		tb.Fatal(err)
	}
	return l.Decode(iq.Type, payload, d)
}

// iqAndPayload reads the IQ start element and its payload's start element
// from d.
func iqAndPayload(tb testing.TB, d *xml.Decoder) (iq, payload xml.StartElement) {
	tb.Helper()
	for n := 0; ; {
		tok, err := d.Token()
		if err != nil {
			tb.Fatalf("looking for the IQ payload: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			if n == 0 {
				iq, n = s.Copy(), 1
				continue
			}
			return iq, s.Copy()
		}
	}
}

func TestXEPExamples(t *testing.T) {
	der := xepDER(t)
	for _, tc := range []struct {
		name string
		xml  string
		want xep0257.Request
		err  wantErr
	}{
		{"append", xepAppend, &xep0257.Append{XMLName: xAppend, Name: "Mobile Client", Cert: der}, wantErr{}},
		// The XEP elides this certificate as "...".
		{"append/no-cert-management", xepAppendNoCert, nil, wantErr{stanza.Modify, stanza.NotAcceptable, "x509cert is not valid base64"}},
		{"append/no-cert-management/filled-in", strings.Replace(xepAppendNoCert, "...", xepCertB64, 1),
			&xep0257.Append{XMLName: xAppend, Name: "Simple Bot", Cert: der, NoCertManagement: true}, wantErr{}},
		{"items", xepItemsGet, &xep0257.Items{XMLName: xItems}, wantErr{}},
		{"disable", xepDisable, &xep0257.Disable{XMLName: xDisable, Name: "Mobile Client"}, wantErr{}},
		{"revoke", xepRevoke, &xep0257.Revoke{XMLName: xRevoke, Name: "Mobile Client"}, wantErr{}},
		{"slixmpp/append", slixmppAppend, &xep0257.Append{XMLName: xAppend, Name: "Simple Bot", Cert: der, NoCertManagement: true}, wantErr{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeIQ(t, tc.xml, xep0257.DefaultLimits())
			checkErr(t, err, tc.err)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("Decode = %#v, want %#v", got, tc.want)
			}
		})
	}

	t.Run("items-result", func(t *testing.T) {
		// Verbatim, the "..." certificates are not base64.
		var items xep0257.Items
		d := xml.NewDecoder(strings.NewReader(xepItemsResult))
		_, start := iqAndPayload(t, d)
		if err := d.DecodeElement(&items, &start); err == nil {
			t.Fatal("decoding the XEP's items result with \"...\" certificates succeeded")
		}
		// Filled in, it decodes.
		d = xml.NewDecoder(strings.NewReader(strings.ReplaceAll(xepItemsResult, "...", xepCertB64)))
		_, start = iqAndPayload(t, d)
		if err := d.DecodeElement(&items, &start); err != nil {
			t.Fatal(err)
		}
		want := xep0257.Items{XMLName: xItems, Items: []xep0257.Item{
			{XMLName: xItem, Name: "Mobile Client", Cert: der, Users: []string{"Phone"}},
			{XMLName: xItem, Name: "Laptop", Cert: der},
		}}
		if !reflect.DeepEqual(items, want) {
			t.Errorf("items = %+v, want %+v", items, want)
		}
	})
}

// TestMarshalDecode checks that what the payload types marshal, Decode reads
// back.
func TestMarshalDecode(t *testing.T) {
	der := xepDER(t)
	for _, tc := range []struct {
		typ stanza.IQType
		req interface {
			xep0257.Request
			TokenReader() xml.TokenReader
		}
	}{
		{stanza.GetIQ, &xep0257.Items{XMLName: xItems}},
		{stanza.SetIQ, &xep0257.Append{XMLName: xAppend, Name: "n", Cert: der}},
		{stanza.SetIQ, &xep0257.Append{XMLName: xAppend, Name: "n", Cert: der, NoCertManagement: true}},
		{stanza.SetIQ, &xep0257.Disable{XMLName: xDisable, Name: "n"}},
		{stanza.SetIQ, &xep0257.Revoke{XMLName: xRevoke, Name: "n"}},
	} {
		// Straight from the tokens (children carry no namespace)...
		r := tc.req.TokenReader()
		tok, err := r.Token()
		if err != nil {
			t.Fatal(err)
		}
		got, err := xep0257.Decode(tc.typ, tok.(xml.StartElement), r)
		if err != nil || !reflect.DeepEqual(got, tc.req) {
			t.Errorf("Decode(tokens of %T) = %#v, %v", tc.req, got, err)
		}
		// ... and through text.
		s := encode(t, tc.req.TokenReader())
		d := xml.NewDecoder(strings.NewReader(s))
		tok, err = d.Token()
		if err != nil {
			t.Fatal(err)
		}
		got, err = xep0257.Decode(tc.typ, tok.(xml.StartElement), d)
		if err != nil || !reflect.DeepEqual(got, tc.req) {
			t.Errorf("Decode(%s) = %#v, %v", s, got, err)
		}
	}
}
