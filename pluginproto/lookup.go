package pluginproto

import (
	"encoding/base64"
	"encoding/xml"
	"strconv"
	"strings"

	"mellium.im/xmlstream"
)

// Lookup is the plugin's question (an IQ get to the component): may this
// certificate log in, with this authorization identity?
//
//	<lookup xmlns='urn:x-saslcert:plugin:0' authzid='alice@example.org'>
//	  <x509cert>MIIB…</x509cert>
//	</lookup>
//	<lookup xmlns='urn:x-saslcert:plugin:0' fingerprint='sha256:…'/>
type Lookup struct {
	// Authzid is the decoded SASL authorization identity; empty when the
	// client sent "=".
	Authzid string
	// Cert is the DER of the certificate the client presented; it travels as
	// base64 in <x509cert/>. If it is nil, Fingerprint names the
	// certificate instead.
	Cert []byte
	// Fingerprint is sha256:<64 hex digits> of the certificate's DER, used
	// when the component offered lookup='fingerprint'. Decoding keeps it as
	// text; it is ignored when Cert is set.
	Fingerprint string
}

// TokenReader implements xmlstream.Marshaler.
func (l Lookup) TokenReader() xml.TokenReader {
	var inner xml.TokenReader
	if l.Cert != nil {
		inner = child("x509cert", xmlstream.Token(xml.CharData(base64.StdEncoding.EncodeToString(l.Cert))))
	}
	fp := l.Fingerprint
	if l.Cert != nil {
		fp = ""
	}
	return element("lookup", inner, attr{name: "authzid", value: l.Authzid}, attr{name: "fingerprint", value: fp})
}

// WriteXML implements xmlstream.WriterTo.
func (l Lookup) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, l.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (l Lookup) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, l.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler. A lookup has at most one
// <x509cert/> of at most MaxLookupCert bytes of text, whose base64 (white
// space removed) is not empty; without one it must have a fingerprint. No
// other child element is allowed. Reading stops at the first error.
func (l *Lookup) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "lookup"); err != nil {
		return err
	}
	m, err := readAttrs(start, "authzid", "fingerprint")
	if err != nil {
		return err
	}
	var b64 *strings.Builder
	err = children(d, "lookup", func(c xml.StartElement) error {
		if !inNS(c, "x509cert") {
			return badRequest("<lookup/> has an unexpected child <" + c.Name.Local + "/>")
		}
		if b64 != nil {
			return badRequest("<lookup/> has more than one <x509cert/>")
		}
		b64 = new(strings.Builder)
		return text(d, "x509cert", MaxLookupCert, b64)
	})
	if err != nil {
		return err
	}
	v := Lookup{Authzid: m["authzid"], Fingerprint: m["fingerprint"]}
	switch {
	case b64 == nil && v.Fingerprint == "":
		return badRequest("<lookup/> has no <x509cert/>")
	case b64 != nil:
		s := strings.Join(strings.Fields(b64.String()), "")
		if s == "" {
			return badRequest("<x509cert/> is empty")
		}
		v.Cert, err = base64.StdEncoding.DecodeString(s)
		if err != nil {
			return badRequest("<x509cert/> is not valid base64")
		}
		v.Fingerprint = ""
	}
	*l = v
	return nil
}

// text reads the text of el (whose start was read) into b, up to its end:
// child elements and more than limit bytes are errors.
func text(d *xml.Decoder, el string, limit int, b *strings.Builder) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return badRequest("<" + el + "/> ends early or is not well-formed XML")
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if b.Len()+len(tok) > limit {
				return badRequest("<" + el + "/> is too large")
			}
			b.Write(tok)
		case xml.StartElement:
			return badRequest("<" + el + "/> has an unexpected child <" + tok.Name.Local + "/>")
		case xml.EndElement:
			return nil
		}
	}
}

// LookupResult is the component's answer allowing a login (in the IQ
// result):
//
//	<lookup xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org' resource='tablet'
//	        fingerprint='sha256:…' no-cert-management='false' max-age='60'/>
type LookupResult struct {
	// JID is the bare account JID the session logs in as.
	JID string
	// Resource is the resource the certificate forces; empty if none.
	Resource string
	// Fingerprint is the certificate's; empty leaves it out (only tests
	// of the plugin do that).
	Fingerprint string
	// NoCertManagement is the grant's no-cert-management.
	NoCertManagement bool
	// MaxAge is how many seconds the plugin may reuse the answer; 0 leaves
	// the attribute out (do not reuse).
	MaxAge int64
}

// TokenReader implements xmlstream.Marshaler.
func (r LookupResult) TokenReader() xml.TokenReader {
	maxAge := ""
	if r.MaxAge > 0 {
		maxAge = strconv.FormatInt(r.MaxAge, 10)
	}
	return emptyElement("lookup",
		attr{name: "jid", value: r.JID, always: true},
		attr{name: "resource", value: r.Resource},
		attr{name: "fingerprint", value: r.Fingerprint},
		attr{name: "no-cert-management", value: strconv.FormatBool(r.NoCertManagement)},
		attr{name: "max-age", value: maxAge},
	)
}

// WriteXML implements xmlstream.WriterTo.
func (r LookupResult) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r LookupResult) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, r.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid, fingerprint and
// no-cert-management (true or false) are required, max-age is a
// non-negative integer if present; no children.
func (r *LookupResult) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "lookup"); err != nil {
		return err
	}
	m, err := readAttrs(start, "jid", "resource", "fingerprint", "no-cert-management", "max-age")
	if err != nil {
		return err
	}
	var v LookupResult
	if v.JID, err = m.need("lookup", "jid"); err != nil {
		return err
	}
	if v.Fingerprint, err = m.need("lookup", "fingerprint"); err != nil {
		return err
	}
	if v.NoCertManagement, err = m.boolean("lookup", "no-cert-management"); err != nil {
		return err
	}
	if _, ok := m["max-age"]; ok {
		n, err := m.count("lookup", "max-age")
		if err != nil {
			return err
		}
		v.MaxAge = int64(n)
	}
	v.Resource = m["resource"]
	if err := children(d, "lookup", nil); err != nil {
		return err
	}
	*r = v
	return nil
}
