package pluginproto

import (
	"encoding/xml"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// LookupError is the <error/> of a lookup the component refused or could
// not decide: a refusal is of type auth with <not-authorized/> and the SASL
// condition to send (Refused); an undecided lookup is of type wait with
// <temporary-auth-failure/> (Undecided).
//
//	<error type='auth'>
//	  <not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>
//	  <text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>…</text>
//	  <invalid-authzid xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>
//	</error>
type LookupError struct {
	Type      stanza.ErrorType
	Condition stanza.Condition
	// SASL is the SASL condition (a child in NSSASL); empty: none.
	SASL string
	// Text is the human-readable text; empty: none.
	Text string
}

// The SASL conditions a lookup error may carry (RFC 6120 §6.5).
const (
	SASLNotAuthorized        = "not-authorized"
	SASLInvalidAuthzid       = "invalid-authzid"
	SASLCredentialsExpired   = "credentials-expired"
	SASLAccountDisabled      = "account-disabled"
	SASLMalformedRequest     = "malformed-request"
	SASLTemporaryAuthFailure = "temporary-auth-failure"
)

// Refused is the error of a refused login: auth/not-authorized with the
// SASL condition cond and text.
func Refused(cond, text string) LookupError {
	return LookupError{Type: stanza.Auth, Condition: stanza.NotAuthorized, SASL: cond, Text: text}
}

// Undecided is the error of a lookup the component could not decide: wait,
// cond (internal-server-error or resource-constraint) and
// <temporary-auth-failure/>.
func Undecided(cond stanza.Condition) LookupError {
	return LookupError{Type: stanza.Wait, Condition: cond, SASL: SASLTemporaryAuthFailure}
}

// StanzaError is e without its SASL condition.
func (e LookupError) StanzaError() stanza.Error {
	se := stanza.Error{Type: e.Type, Condition: e.Condition}
	if e.Text != "" {
		se.Text = map[string]string{"": e.Text}
	}
	return se
}

// TokenReader implements xmlstream.Marshaler.
func (e LookupError) TokenReader() xml.TokenReader {
	var sasl xml.TokenReader
	if e.SASL != "" {
		sasl = xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSSASL, Local: e.SASL}})
	}
	return e.StanzaError().Wrap(sasl)
}

// WriteXML implements xmlstream.WriterTo.
func (e LookupError) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, e.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (e LookupError) MarshalXML(enc *xml.Encoder, _ xml.StartElement) error {
	return marshal(enc, e.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler for the <error/> element (no
// namespace, or jabber:client / jabber:component:accept as the stanza's):
// type and one stanza condition are required; at most one SASL condition
// and one text; other children are errors.
func (e *LookupError) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if start.Name.Local != "error" {
		return badRequest("expected <error/>, got <" + start.Name.Local + "/>")
	}
	m, err := readAttrs(start, "type")
	if err != nil {
		return err
	}
	v := LookupError{Type: stanza.ErrorType(m["type"])}
	if v.Type == "" {
		return badRequest("<error/> has no type")
	}
	var hasText bool
	err = children(d, "error", func(c xml.StartElement) error {
		switch {
		case c.Name.Space == stanza.NSError && c.Name.Local == "text":
			if hasText {
				return badRequest("<error/> has more than one <text/>")
			}
			hasText = true
			var b strings.Builder
			if err := text(d, "text", 1<<10, &b); err != nil {
				return err
			}
			v.Text = b.String()
			return nil
		case c.Name.Space == stanza.NSError:
			if v.Condition != "" {
				return badRequest("<error/> has more than one condition")
			}
			v.Condition = stanza.Condition(c.Name.Local)
		case c.Name.Space == NSSASL:
			if v.SASL != "" {
				return badRequest("<error/> has more than one SASL condition")
			}
			v.SASL = c.Name.Local
		default:
			return badRequest("<error/> has an unexpected child <" + c.Name.Local + "/>")
		}
		return children(d, c.Name.Local, nil)
	})
	if err != nil {
		return err
	}
	if v.Condition == "" {
		return badRequest("<error/> has no condition")
	}
	*e = v
	return nil
}
