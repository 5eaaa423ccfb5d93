package pluginproto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"strconv"
	"strings"

	"mellium.im/xmlstream"
)

// Method is how a session logged in, in a Stamp.
type Method string

// The methods a stamp may name.
const (
	MethodCertificate Method = "certificate" // SASL EXTERNAL through saslcert
	MethodOther       Method = "other"       // any other login (password, token)
)

// Stamp is the auth stamp the plugin puts after the payload of the client
// requests it passes to the component, saying how the sending session logged
// in, under a MAC keyed with the component secret:
//
//	<auth xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org/kiosk' id='req-1'
//	      method='certificate' fingerprint='sha256:…' manage='false' mac='…'/>
//
// Decoding checks the structure only (method and manage from their sets, a
// fingerprint exactly with method certificate); whether the MAC verifies,
// and whether the stamp names the request it came with, is for the reader
// to check (Verify).
type Stamp struct {
	// JID is the full JID of the session (the request's from).
	JID string
	// ID is the request's id.
	ID     string
	Method Method
	// Fingerprint is the certificate's for MethodCertificate; empty
	// otherwise.
	Fingerprint string
	// Manage is false when the login's grant carries no-cert-management.
	Manage bool
	// MAC is the hex HMAC-SHA256 of the fields (Sign, Verify).
	MAC string
}

// StampMessage is what the MAC of a stamp covers (docs/PLUGIN-PROTOCOL.md):
// "urn:x-saslcert:plugin:0 auth\n" followed by jid, id, method, fingerprint
// (empty if absent) and manage, each as "<length in bytes>:<value>,". The
// length prefixes make different stamps have different messages.
func StampMessage(jid, id, method, fingerprint, manage string) []byte {
	var b strings.Builder
	b.WriteString(NS + " auth\n")
	for _, f := range []string{jid, id, method, fingerprint, manage} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
		b.WriteByte(',')
	}
	return []byte(b.String())
}

// StampMAC is the hex HMAC-SHA256 under secret of the StampMessage of the
// fields, as they are on the wire.
func StampMAC(secret []byte, jid, id, method, fingerprint, manage string) string {
	m := hmac.New(sha256.New, secret)
	m.Write(StampMessage(jid, id, method, fingerprint, manage))
	return hex.EncodeToString(m.Sum(nil))
}

// Sum is the MAC of s's fields under secret.
func (s Stamp) Sum(secret []byte) string {
	return StampMAC(secret, s.JID, s.ID, string(s.Method), s.Fingerprint, strconv.FormatBool(s.Manage))
}

// Sign returns s with its MAC under secret.
func (s Stamp) Sign(secret []byte) Stamp {
	s.MAC = s.Sum(secret)
	return s
}

// Verify reports whether s's MAC (hex, in either case) is the MAC of its
// fields under secret, in constant time.
func (s Stamp) Verify(secret []byte) bool {
	return hmac.Equal([]byte(strings.ToLower(s.MAC)), []byte(s.Sum(secret)))
}

// TokenReader implements xmlstream.Marshaler.
func (s Stamp) TokenReader() xml.TokenReader {
	return emptyElement("auth",
		attr{name: "jid", value: s.JID, always: true},
		attr{name: "id", value: s.ID, always: true},
		attr{name: "method", value: string(s.Method), always: true},
		attr{name: "fingerprint", value: s.Fingerprint},
		attr{name: "manage", value: strconv.FormatBool(s.Manage)},
		attr{name: "mac", value: s.MAC, always: true},
	)
}

// WriteXML implements xmlstream.WriterTo.
func (s Stamp) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (s Stamp) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, s.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid and mac are required (id
// may be empty, as the request's may),
// method is certificate (with a fingerprint) or other (without one), manage
// is true or false; no children.
func (s *Stamp) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "auth"); err != nil {
		return err
	}
	m, err := readAttrs(start, "jid", "id", "method", "fingerprint", "manage", "mac")
	if err != nil {
		return err
	}
	var v Stamp
	for _, f := range []struct {
		name string
		to   *string
	}{{"jid", &v.JID}, {"mac", &v.MAC}} {
		if *f.to, err = m.need("auth", f.name); err != nil {
			return err
		}
	}
	if v.Manage, err = m.boolean("auth", "manage"); err != nil {
		return err
	}
	v.ID, v.Method, v.Fingerprint = m["id"], Method(m["method"]), m["fingerprint"]
	switch {
	case v.Method == MethodCertificate && v.Fingerprint == "":
		return badRequest("<auth method='certificate'/> has no fingerprint")
	case v.Method == MethodOther && v.Fingerprint != "":
		return badRequest("<auth method='other'/> has a fingerprint")
	case v.Method != MethodCertificate && v.Method != MethodOther:
		return badRequest("method of <auth/> must be certificate or other, not " + strconv.Quote(string(v.Method)))
	}
	if err := children(d, "auth", nil); err != nil {
		return err
	}
	*s = v
	return nil
}
