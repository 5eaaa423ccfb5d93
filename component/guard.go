package component

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"runtime/debug"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
)

// guard is the xmpp.Handler a link's Serve runs: the one place that makes
// sure nothing a peer puts in a stanza ends the stream. Serve ends the stream
// whenever its handler returns an error, and mellium's mux returns one for
// many stanzas the server routes without complaint (a JID its PRECIS parser
// refuses, text before an IQ's payload, an IQ without a payload); a handler
// could also fail or panic. So for every top-level element:
//
//   - a stanza whose to or from mellium cannot parse is never handed to the
//     mux: an IQ get or set gets modify/jid-malformed (addressed with the raw
//     attribute strings), anything else is dropped;
//   - the mux's writes are buffered and sent only if it returns nil, having
//     written well-formed, balanced XML; otherwise (an error, a panic, broken
//     output) what it wrote is dropped and an IQ get or set gets
//     modify/bad-request (wait/internal-server-error after a panic);
//   - only a failure of the stream itself ends it: an error reading the
//     input (not well-formed XML, the connection failing) or writing the
//     output.
//
// Results and errors are never answered. A handler that returns an error
// must not have dispatched work (which answers on its own); every handler
// fails, if at all, before it dispatches.
type guard struct {
	l    *link
	next xmpp.Handler
}

// stanzaParsers parse a stanza's start element exactly as the mux does.
var stanzaParsers = map[string]func(xml.StartElement) error{
	"iq":       func(s xml.StartElement) error { _, err := stanza.NewIQ(s); return err },
	"message":  func(s xml.StartElement) error { _, err := stanza.NewMessage(s); return err },
	"presence": func(s xml.StartElement) error { _, err := stanza.NewPresence(s); return err },
}

// HandleXMPP implements xmpp.Handler.
func (g guard) HandleXMPP(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	c := g.l.c
	isStanza := stanza.Is(start.Name, component.NSAccept)
	if isStanza {
		if err := stanzaParsers[start.Name.Local](*start); err != nil {
			c.log.Debug("refused a stanza with an address that is not a valid JID", "stanza", start.Name.Local,
				"from", rawAttr(*start, "from"), "to", rawAttr(*start, "to"), "err", err)
			return g.answer(t, *start, stanzaErr(stanza.Modify, stanza.JIDMalformed, "an address of this stanza is not a valid JID"))
		}
	}
	s := &stanzaIO{in: t}
	err, panicked := g.run(s, start)
	if s.inErr != nil {
		// The stream itself is broken; Serve ends it.
		return s.inErr
	}
	if err == nil && !panicked {
		if err = s.check(); err == nil {
			// Only now is anything written: a failure here is the
			// stream's.
			for _, tok := range s.out {
				if werr := t.EncodeToken(tok); werr != nil {
					return werr
				}
			}
			return nil
		}
	}
	se := stanzaErr(stanza.Modify, stanza.BadRequest, "the stanza could not be processed")
	if panicked {
		se = internalError()
	} else {
		c.log.Debug("a stanza could not be processed; the stream goes on", "stanza", start.Name.Local,
			"from", rawAttr(*start, "from"), "id", rawAttr(*start, "id"), "err", err)
	}
	if !isStanza {
		return nil
	}
	return g.answer(t, *start, se)
}

// run calls the mux, turning a panic into panicked.
func (g guard) run(s *stanzaIO, start *xml.StartElement) (err error, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			g.l.c.log.Error("panic while handling a stanza; the stream goes on", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err, panicked = nil, true
		}
	}()
	return g.next.HandleXMPP(s, start), false
}

// answer sends se in reply to the stanza start if it is an IQ get or set
// with an id and a from; anything else is dropped. The reply's to and id
// are the raw attribute strings (the server accepted them even where
// mellium's parser does not), its from the address the IQ was sent to if
// that is a valid JID of the component's domain, else the component's JID
// (the server closes a component stream that sends from another domain).
func (g guard) answer(t xmlstream.TokenWriter, start xml.StartElement, se stanza.Error) error {
	c := g.l.c
	typ, id, from := rawAttr(start, "type"), rawAttr(start, "id"), rawAttr(start, "from")
	if start.Name.Local != "iq" || (typ != string(stanza.GetIQ) && typ != string(stanza.SetIQ)) || id == "" || from == "" {
		return nil
	}
	replyFrom := c.cfg.JID
	if to, err := jid.Parse(rawAttr(start, "to")); err == nil && to.Domainpart() == c.cfg.JID.Domainpart() {
		replyFrom = to
	}
	reply := xmlstream.Wrap(se.TokenReader(), xml.StartElement{
		Name: xml.Name{Local: "iq"},
		Attr: []xml.Attr{
			{Name: xml.Name{Local: "type"}, Value: string(stanza.ErrorIQ)},
			{Name: xml.Name{Local: "id"}, Value: id},
			{Name: xml.Name{Local: "from"}, Value: replyFrom.String()},
			{Name: xml.Name{Local: "to"}, Value: from},
		},
	})
	_, err := xmlstream.Copy(t, reply)
	return err
}

// rawAttr is the value of the stanza attribute local as mellium reads it:
// unqualified or in the stanza's namespace ("" if absent).
func rawAttr(start xml.StartElement, local string) string {
	for _, a := range start.Attr {
		if a.Name.Local == local && (a.Name.Space == "" || a.Name.Space == start.Name.Space) {
			return a.Value
		}
	}
	return ""
}

// stanzaIO is what the mux reads one stanza from and writes its answer to:
// reads pass through (remembering a failure of the stream itself), writes
// are buffered until the guard knows the handler succeeded.
type stanzaIO struct {
	in    xml.TokenReader
	inErr error // the first error reading the stream, other than the stanza's end
	out   []xml.Token
}

// Token implements xml.TokenReader.
func (s *stanzaIO) Token() (xml.Token, error) {
	tok, err := s.in.Token()
	if err != nil && err != io.EOF && s.inErr == nil {
		s.inErr = err
	}
	return tok, err
}

// EncodeToken implements xmlstream.TokenWriter; it never fails.
func (s *stanzaIO) EncodeToken(tok xml.Token) error {
	s.out = append(s.out, xml.CopyToken(tok))
	return nil
}

// Encode implements xmlstream.Encoder.
func (s *stanzaIO) Encode(v any) error {
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).Encode(v); err != nil {
		return err
	}
	return s.encodeRaw(&b)
}

// EncodeElement implements xmlstream.Encoder.
func (s *stanzaIO) EncodeElement(v any, start xml.StartElement) error {
	var b bytes.Buffer
	if err := xml.NewEncoder(&b).EncodeElement(v, start); err != nil {
		return err
	}
	return s.encodeRaw(&b)
}

func (s *stanzaIO) encodeRaw(b *bytes.Buffer) error {
	d := xml.NewDecoder(b)
	for {
		tok, err := d.RawToken()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		_ = s.EncodeToken(tok)
	}
}

// errUnsendable marks output that is not well-formed, balanced XML.
var errUnsendable = errors.New("component: the reply is not well-formed XML")

// check reports whether the buffered output can be written as it is.
func (s *stanzaIO) check() error {
	return checkTokens(s.out)
}

// maxStanzaSize bounds what the component sends in one stanza: Prosody
// closes a component stream that sends a stanza over its
// component_stanza_size_limit (default 512 KiB), so a larger answer (e.g.
// <items/> with --max-certs × --max-cert-size beyond it) is not sent; the
// request gets an error instead.
const maxStanzaSize = 500 << 10

// countWriter counts the bytes written to it.
type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

// checkTokens reports (errUnsendable) whether toks encode to well-formed
// XML with every element closed, within maxStanzaSize.
func checkTokens(toks []xml.Token) error {
	var n countWriter
	e := xml.NewEncoder(&n)
	for _, tok := range toks {
		if err := e.EncodeToken(tok); err != nil {
			return fmt.Errorf("%w: %w", errUnsendable, err)
		}
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("%w: %w", errUnsendable, err)
	}
	if n.n > maxStanzaSize {
		return fmt.Errorf("%w: %d bytes, more than the server accepts from a component (%d); lower --max-certs or --max-cert-size",
			errUnsendable, n.n, maxStanzaSize)
	}
	return nil
}
