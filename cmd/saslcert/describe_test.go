package main

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"slices"
	"testing"
	"time"
)

func TestASN1String(t *testing.T) {
	tests := []struct {
		name      string
		der       []byte
		typ       string
		text      string
		ok        bool
		printable bool
	}{
		{name: "utf8", der: []byte{0x0c, 3, 'a', 0xc3, 0xbc}, typ: "UTF8String", text: "aü", ok: true, printable: true},
		{name: "utf8-invalid", der: []byte{0x0c, 2, 'a', 0xff}, typ: "UTF8String", text: "a\uFFFD", ok: false},
		{name: "utf8-nul", der: []byte{0x0c, 3, 'a', 0, 'b'}, typ: "UTF8String", text: "a\x00b", ok: true, printable: false},
		{name: "ia5", der: []byte{0x16, 2, 'h', 'i'}, typ: "IA5String", text: "hi", ok: true, printable: true},
		{name: "printable", der: []byte{0x13, 2, 'h', 'i'}, typ: "PrintableString", text: "hi", ok: true, printable: true},
		{name: "ia5-high-bit", der: []byte{0x16, 1, 0xe9}, typ: "IA5String", text: "\uFFFD", ok: false},
		{name: "t61-latin1", der: []byte{0x14, 1, 0xe9}, typ: "T61String", text: "é", ok: true, printable: true},
		{name: "bmp", der: []byte{0x1e, 4, 0, 'h', 0x04, 0x30}, typ: "BMPString", text: "hа", ok: true, printable: true},
		{name: "bmp-odd", der: []byte{0x1e, 3, 0, 'h', 0}, typ: "BMPString", ok: false},
		{name: "universal", der: []byte{0x1c, 4, 0, 0, 0, 'x'}, typ: "UniversalString", text: "x", ok: true, printable: true},
		{name: "octet-string", der: []byte{0x04, 1, 'x'}, typ: "OCTET STRING", ok: false},
		{name: "sequence", der: []byte{0x30, 3, 0x0c, 1, 'x'}, typ: "SEQUENCE", ok: false},
		{name: "context", der: []byte{0xa0, 3, 0x0c, 1, 'x'}, typ: "[0]", ok: false},
		{name: "truncated", der: []byte{0x0c, 5, 'x'}, typ: "malformed DER", ok: false},
		{name: "trailing", der: []byte{0x0c, 1, 'x', 0}, typ: "malformed DER", ok: false},
		{name: "empty", der: nil, typ: "malformed DER", ok: false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, text, ok := asn1String(tc.der)
			if typ != tc.typ || text != tc.text || ok != tc.ok {
				t.Errorf("asn1String(% x) = %q, %q, %v; want %q, %q, %v", tc.der, typ, text, ok, tc.typ, tc.text, tc.ok)
			}
			if ok && isPrintable(text) != tc.printable {
				t.Errorf("isPrintable(%q) = %v, want %v", text, !tc.printable, tc.printable)
			}
		})
	}
}

func TestPrintable(t *testing.T) {
	tests := []struct{ in, want string }{
		{"hamlet@shakespeare.lit", "hamlet@shakespeare.lit"},
		{"alice@bücher.example", "alice@bücher.example"},
		{"a\x00b", `a\x00b`},
		{"\x1b[31mred", `\x1b[31mred`},
		{"evil\u202egnp.exe", `evil\u202egnp.exe`},
		{"bad\xffutf8", `bad\xffutf8`},
		{"tab\there", `tab\there`},
	}
	for _, tc := range tests {
		if got := printable(tc.in); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got, want := withASCII("hаmlet"), `hаmlet ("h\u0430mlet")`; got != want {
		t.Errorf("withASCII = %q, want %q", got, want)
	}
	if got := withASCII("hamlet"); got != "hamlet" {
		t.Errorf("withASCII(ASCII) = %q", got)
	}
}

func TestValidity(t *testing.T) {
	nb := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	na := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		now   time.Time
		state string
		days  int64
		text  string
	}{
		{nb.Add(-36 * time.Hour), "not-yet-valid", 1, "not yet valid (valid in 1 day)"},
		{nb.Add(-time.Hour), "not-yet-valid", 0, "not yet valid (valid in less than a day)"},
		{nb, "valid", 365, "valid for 365 more days"},
		{na.Add(-25 * time.Hour), "valid", 1, "valid for 1 more day"},
		{na.Add(-time.Minute), "valid", 0, "valid for less than a day more"},
		{na.Add(time.Minute), "expired", 0, "expired less than a day ago"},
		{na.Add(49 * time.Hour), "expired", 2, "expired 2 days ago"},
	}
	for _, tc := range tests {
		state, days := validity(nb, na, tc.now)
		if state != tc.state || days != tc.days {
			t.Errorf("validity at %v = %s, %d; want %s, %d", tc.now, state, days, tc.state, tc.days)
		}
		if got := validityText(state, days); got != tc.text {
			t.Errorf("validityText(%s, %d) = %q, want %q", state, days, got, tc.text)
		}
	}
	// No time.Duration overflow for far-away dates.
	far := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)
	if _, days := validity(nb, far, nb); days != 2912442 {
		t.Errorf("days to 9999-12-31: %d", days)
	}
}

func TestDNString(t *testing.T) {
	name := pkix.Name{
		CommonName: "Your Name, Esq.",
		ExtraNames: []pkix.AttributeTypeAndValue{
			{Type: asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}, Value: "hamlet@shakespeare.lit"},
			{Type: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: "x"},
		},
	}
	raw, err := asn1.Marshal(name.ToRDNSequence())
	if err != nil {
		t.Fatal(err)
	}
	want := `1.2.3.4=x,emailAddress=hamlet@shakespeare.lit,CN=Your Name\, Esq.`
	if got := dnString(raw, name); got != want {
		t.Errorf("dnString = %q, want %q", got, want)
	}
	if got := dnString([]byte{0x30}, name); got != name.String() {
		t.Errorf("dnString(malformed) = %q, want the fallback %q", got, name.String())
	}
	if got := escapeDNValue(" #a+b "); got != `\ #a\+b\ ` {
		t.Errorf("escapeDNValue = %q", got)
	}
}

func TestUsageNames(t *testing.T) {
	if got := keyUsageNames(x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign | x509.KeyUsageDecipherOnly); !slices.Equal(got, []string{"digitalSignature", "cRLSign", "decipherOnly"}) {
		t.Errorf("keyUsageNames = %v", got)
	}
	if got := keyUsageNames(0); got == nil || len(got) != 0 {
		t.Errorf("keyUsageNames(0) = %#v, want an empty list", got)
	}
	c := &x509.Certificate{
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageAny},
		UnknownExtKeyUsage: []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 99}},
	}
	if got := extKeyUsageNames(c); !slices.Equal(got, []string{"clientAuth", "any", "1.3.6.1.5.5.7.3.99"}) {
		t.Errorf("extKeyUsageNames = %v", got)
	}
}
