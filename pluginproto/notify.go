package pluginproto

import (
	"encoding/xml"
	"strconv"

	"mellium.im/xmlstream"
)

// The component's notices to the plugin (IQ sets to a server domain).

// Changed says that the certificates of an account changed: the plugin
// forgets what it cached about it and answers with an empty result.
//
//	<changed xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org'/>
type Changed struct {
	JID string // bare account JID
}

// TokenReader implements xmlstream.Marshaler.
func (c Changed) TokenReader() xml.TokenReader {
	return emptyElement("changed", attr{name: "jid", value: c.JID, always: true})
}

// WriteXML implements xmlstream.WriterTo.
func (c Changed) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, c.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (c Changed) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, c.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid is required; no children.
func (c *Changed) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "changed", "jid")
	if err != nil {
		return err
	}
	*c = Changed{JID: m["jid"]}
	return nil
}

// Revoked says that a certificate was revoked: the plugin closes every
// session of the account that logged in with it.
//
//	<revoked xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org' fingerprint='sha256:…'/>
type Revoked struct {
	JID         string // bare account JID
	Fingerprint string
}

// TokenReader implements xmlstream.Marshaler.
func (r Revoked) TokenReader() xml.TokenReader {
	return emptyElement("revoked", attr{name: "jid", value: r.JID, always: true}, attr{name: "fingerprint", value: r.Fingerprint, always: true})
}

// WriteXML implements xmlstream.WriterTo.
func (r Revoked) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Revoked) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, r.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid and fingerprint are
// required; no children.
func (r *Revoked) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "revoked", "jid", "fingerprint")
	if err != nil {
		return err
	}
	*r = Revoked{JID: m["jid"], Fingerprint: m["fingerprint"]}
	return nil
}

// Disabled asks the plugin to close the one session JID (a full JID) if it
// logged in with the certificate Fingerprint, which is disabled.
//
//	<disabled xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org/phone' fingerprint='sha256:…'/>
type Disabled struct {
	JID         string // full JID of the session
	Fingerprint string
}

// TokenReader implements xmlstream.Marshaler.
func (r Disabled) TokenReader() xml.TokenReader {
	return emptyElement("disabled", attr{name: "jid", value: r.JID, always: true}, attr{name: "fingerprint", value: r.Fingerprint, always: true})
}

// WriteXML implements xmlstream.WriterTo.
func (r Disabled) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Disabled) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, r.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid and fingerprint are
// required; no children.
func (r *Disabled) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "disabled", "jid", "fingerprint")
	if err != nil {
		return err
	}
	*r = Disabled{JID: m["jid"], Fingerprint: m["fingerprint"]}
	return nil
}

// Closed is the plugin's answer to Revoked and Disabled: how many sessions
// it closed. Its element is named after the notice:
//
//	<revoked xmlns='urn:x-saslcert:plugin:0' closed='2'/>
//	<disabled xmlns='urn:x-saslcert:plugin:0' closed='0'/>
type Closed struct {
	// Notice is "revoked" or "disabled".
	Notice string
	Count  int
}

// TokenReader implements xmlstream.Marshaler.
func (c Closed) TokenReader() xml.TokenReader {
	return emptyElement(c.Notice, attr{name: "closed", value: strconv.Itoa(c.Count)})
}

// WriteXML implements xmlstream.WriterTo.
func (c Closed) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, c.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (c Closed) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, c.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: <revoked/> or <disabled/> with
// closed, a non-negative integer; no children.
func (c *Closed) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Local != "revoked" && start.Name.Local != "disabled" {
		return checkName(start, "revoked")
	}
	m, err := decodeEmpty(d, start, start.Name.Local)
	if err != nil {
		return err
	}
	n, err := m.count(start.Name.Local, "closed")
	if err != nil {
		return err
	}
	*c = Closed{Notice: start.Name.Local, Count: n}
	return nil
}

// decodeEmpty checks that start is <el xmlns=NS/>, reads its attributes
// (those in need are required; the answers' closed, revoked, cleared and
// exists are read too) and its (empty) content.
func decodeEmpty(d *xml.Decoder, start xml.StartElement, el string, need ...string) (attrs, error) {
	if err := checkName(start, el); err != nil {
		return nil, err
	}
	m, err := readAttrs(start, append([]string{"closed", "revoked", "cleared", "exists"}, need...)...)
	if err != nil {
		return nil, err
	}
	for _, n := range need {
		if _, err := m.need(el, n); err != nil {
			return nil, err
		}
	}
	if err := children(d, el, nil); err != nil {
		return nil, err
	}
	return m, nil
}
