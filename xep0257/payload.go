package xep0257

import (
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"

	"mellium.im/xmlstream"
)

// Names of the payload elements.
var (
	nameItems   = xml.Name{Space: NS, Local: "items"}
	nameItem    = xml.Name{Space: NS, Local: "item"}
	nameAppend  = xml.Name{Space: NS, Local: "append"}
	nameDisable = xml.Name{Space: NS, Local: "disable"}
	nameRevoke  = xml.Name{Space: NS, Local: "revoke"}
)

// Item is one stored certificate in an <items/> result.
//
// On the wire:
//
//	<item>
//	  <name>Mobile Client</name>
//	  <x509cert>MIIC…</x509cert>
//	  <users><resource>Phone</resource></users>  <!-- only if sessions use it -->
//	  <no-cert-management/>                       <!-- extension, only if set -->
//	</item>
type Item struct {
	XMLName xml.Name `xml:"urn:xmpp:saslcert:1 item"`
	Name    string
	// Cert is the certificate in DER; it travels as base64 in <x509cert/>.
	Cert []byte
	// Users are the resources of live sessions that logged in with Cert.
	Users []string
	// NoCertManagement is not in XEP-0257 (xmpp-rs has it); it is emitted
	// only when set and clients that do not know it ignore it.
	NoCertManagement bool
}

// TokenReader implements xmlstream.Marshaler.
func (i Item) TokenReader() xml.TokenReader { return i.tokenReader(nameItem) }

// tokenReader returns the tokens of i in an element called name; inside
// <items/> the name has no namespace, so that it inherits its parent's.
func (i Item) tokenReader(name xml.Name) xml.TokenReader {
	inner := []xml.TokenReader{
		textElement("name", i.Name),
		textElement("x509cert", base64.StdEncoding.EncodeToString(i.Cert)),
	}
	if len(i.Users) > 0 {
		users := make([]xml.TokenReader, 0, len(i.Users))
		for _, u := range i.Users {
			users = append(users, textElement("resource", u))
		}
		inner = append(inner, element("users", users...))
	}
	if i.NoCertManagement {
		inner = append(inner, element("no-cert-management"))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: name})
}

// WriteXML implements xmlstream.WriterTo.
func (i Item) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, i.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (i Item) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, i.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler. It is lenient, as a client
// reading a server's reply should be: unknown children are ignored and the
// name is taken as it is. The only error of its own is an <x509cert/> that is
// not base64 (a plain error: it is not the server's answer).
func (i *Item) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	var aux struct {
		Name  string `xml:"name"`
		Cert  string `xml:"x509cert"`
		Users *struct {
			Resources []string `xml:"resource"`
		} `xml:"users"`
		NoCertManagement *struct{} `xml:"no-cert-management"`
	}
	if err := d.DecodeElement(&aux, &start); err != nil {
		return err
	}
	der, err := decodeBase64(aux.Cert)
	if err != nil {
		return fmt.Errorf("xep0257: the <x509cert/> of item %q is not valid base64: %w", aux.Name, err)
	}
	*i = Item{XMLName: start.Name, Name: aux.Name, Cert: der, NoCertManagement: aux.NoCertManagement != nil}
	if aux.Users != nil && len(aux.Users.Resources) > 0 {
		i.Users = aux.Users.Resources
	}
	return nil
}

// Items is the <items/> payload: empty in the request (an IQ get), the
// account's active certificates in the result.
type Items struct {
	XMLName xml.Name `xml:"urn:xmpp:saslcert:1 items"`
	Items   []Item   `xml:"urn:xmpp:saslcert:1 item"`
}

func (*Items) isRequest() {}

// TokenReader implements xmlstream.Marshaler.
func (is Items) TokenReader() xml.TokenReader {
	inner := make([]xml.TokenReader, 0, len(is.Items))
	for _, it := range is.Items {
		inner = append(inner, it.tokenReader(xml.Name{Local: "item"}))
	}
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: nameItems})
}

// WriteXML implements xmlstream.WriterTo.
func (is Items) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, is.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (is Items) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, is.TokenReader())
}

// Append is the <append/> request (an IQ set): store Cert under Name.
//
// On the wire the children may come in any order:
//
//	<append xmlns='urn:xmpp:saslcert:1'>
//	  <name>Simple Bot</name>
//	  <no-cert-management/>  <!-- optional -->
//	  <x509cert>MIIC…</x509cert>
//	</append>
type Append struct {
	XMLName xml.Name `xml:"urn:xmpp:saslcert:1 append"`
	Name    string
	// Cert is the certificate in DER; it travels as base64 in <x509cert/>.
	Cert []byte
	// NoCertManagement forbids sessions that log in with Cert to append,
	// disable or revoke certificates.
	NoCertManagement bool
}

func (*Append) isRequest() {}

// TokenReader implements xmlstream.Marshaler.
func (a Append) TokenReader() xml.TokenReader {
	inner := []xml.TokenReader{textElement("name", a.Name)}
	if a.NoCertManagement {
		inner = append(inner, element("no-cert-management"))
	}
	inner = append(inner, textElement("x509cert", base64.StdEncoding.EncodeToString(a.Cert)))
	return xmlstream.Wrap(xmlstream.MultiReader(inner...), xml.StartElement{Name: nameAppend})
}

// WriteXML implements xmlstream.WriterTo.
func (a Append) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a Append) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler with the rules of Decode, without
// the size limits. Errors are stanza.Error values.
func (a *Append) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := unmarshalRequest(d, start, nameAppend)
	if err == nil {
		*a = *v.(*Append)
	}
	return err
}

// Disable is the <disable/> request (an IQ set): the certificate called Name
// may no longer log in; live sessions stay.
type Disable struct {
	XMLName xml.Name `xml:"urn:xmpp:saslcert:1 disable"`
	Name    string
}

func (*Disable) isRequest() {}

// TokenReader implements xmlstream.Marshaler.
func (r Disable) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(textElement("name", r.Name), xml.StartElement{Name: nameDisable})
}

// WriteXML implements xmlstream.WriterTo.
func (r Disable) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Disable) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, r.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler with the rules of Decode. Errors
// are stanza.Error values.
func (r *Disable) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := unmarshalRequest(d, start, nameDisable)
	if err == nil {
		*r = *v.(*Disable)
	}
	return err
}

// Revoke is the <revoke/> request (an IQ set): like Disable, and live
// sessions that logged in with the certificate are closed.
type Revoke struct {
	XMLName xml.Name `xml:"urn:xmpp:saslcert:1 revoke"`
	Name    string
}

func (*Revoke) isRequest() {}

// TokenReader implements xmlstream.Marshaler.
func (r Revoke) TokenReader() xml.TokenReader {
	return xmlstream.Wrap(textElement("name", r.Name), xml.StartElement{Name: nameRevoke})
}

// WriteXML implements xmlstream.WriterTo.
func (r Revoke) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, r.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (r Revoke) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, r.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler with the rules of Decode. Errors
// are stanza.Error values.
func (r *Revoke) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	v, err := unmarshalRequest(d, start, nameRevoke)
	if err == nil {
		*r = *v.(*Revoke)
	}
	return err
}

// unmarshalRequest decodes the request want from d with Decode's rules but no
// size limits, for the UnmarshalXML methods.
func unmarshalRequest(d *xml.Decoder, start xml.StartElement, want xml.Name) (Request, error) {
	if start.Name != want {
		return nil, badRequest("expected <" + want.Local + "/> in " + NS + ", got <" + start.Name.Local + "/>")
	}
	return noLimits.decode(start, d)
}

// element returns the tokens of an element called local in its parent's
// namespace with the given children.
func element(local string, children ...xml.TokenReader) xml.TokenReader {
	return xmlstream.Wrap(xmlstream.MultiReader(children...), xml.StartElement{Name: xml.Name{Local: local}})
}

// textElement returns the tokens of an element called local in its parent's
// namespace with text as its only content.
func textElement(local, text string) xml.TokenReader {
	var inner xml.TokenReader
	if text != "" {
		inner = xmlstream.Token(xml.CharData(text))
	}
	return xmlstream.Wrap(inner, xml.StartElement{Name: xml.Name{Local: local}})
}

func marshal(e *xml.Encoder, r xml.TokenReader) error {
	if _, err := xmlstream.Copy(e, r); err != nil {
		return err
	}
	return e.Flush()
}

// decodeBase64 decodes the base64 text of an <x509cert/> after removing all
// XML whitespace (the XEP's own example wraps and indents it).
func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(stripSpace(s))
}

// stripSpace removes XML whitespace (space, tab, CR, LF) from s.
func stripSpace(s string) string {
	if !strings.ContainsAny(s, " \t\r\n") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if !isXMLSpace(s[i]) {
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

func isXMLSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }
