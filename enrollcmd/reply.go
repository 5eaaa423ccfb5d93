package enrollcmd

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// Reply is the answer to a command: an error (Err, with an XEP-0050
// condition such as "bad-payload" next to the stanza condition, or "") or a
// <command/> element (Command) for a result IQ. The component wraps it in
// the IQ (Payload).
type Reply struct {
	Err       *stanza.Error
	Condition string
	Command   xml.TokenReader
}

// Payload is what the component puts inside the reply IQ: the <command/>
// of a result, or the <error/> (with the XEP-0050 condition) of an error.
func (r Reply) Payload() (payload xml.TokenReader, isError bool) {
	if r.Err == nil {
		return r.Command, false
	}
	if r.Condition == "" {
		return r.Err.TokenReader(), true
	}
	return r.Err.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: NSCommands, Local: r.Condition}})), true
}

// errReply is an error reply with the XEP-0050 condition cmdCond ("": none).
func errReply(se stanza.Error, cmdCond string) Reply {
	return Reply{Err: &se, Condition: cmdCond}
}

// stanzaErr builds a stanza error with an English text.
func stanzaErr(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	se := stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		se.Text = map[string]string{"": text}
	}
	return se
}

// newID is a command session's id.
func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "sc-" + hex.EncodeToString(b)
}

// decodeElement unmarshals into v the element whose start was already read
// from r.
func decodeElement(start xml.StartElement, r xml.TokenReader, v any) error {
	return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), r)).Decode(v)
}
