package pluginproto

import (
	"encoding/xml"
	"strconv"

	"mellium.im/xmlstream"
)

// Event is what happened to a session in a notice.
type Event string

// The events of a session notice; a session list entry has none.
const (
	EventBound  Event = "bound"
	EventClosed Event = "closed"
)

// Session is a session that logged in with a certificate: a notice (with
// Event) or an entry of a session list (without).
//
//	<session xmlns='urn:x-saslcert:plugin:0' event='bound' jid='alice@example.org/tablet' fingerprint='sha256:…'/>
//
// Decoding keeps JID and Fingerprint as text, possibly empty: the component
// checks each notice and entry on its own and ignores a bad one in a batch.
type Session struct {
	Event       Event
	JID         string
	Fingerprint string
}

// TokenReader implements xmlstream.Marshaler.
func (s Session) TokenReader() xml.TokenReader { return s.tokenReader(emptyElement) }

func (s Session) tokenReader(el func(string, ...attr) xml.TokenReader) xml.TokenReader {
	return el("session",
		attr{name: "event", value: string(s.Event)},
		attr{name: "jid", value: s.JID, always: true},
		attr{name: "fingerprint", value: s.Fingerprint},
	)
}

// WriteXML implements xmlstream.WriterTo.
func (s Session) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, s.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (s Session) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, s.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: event, if present, is bound or
// closed; no children.
func (s *Session) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "session"); err != nil {
		return err
	}
	m, err := readAttrs(start, "event", "jid", "fingerprint")
	if err != nil {
		return err
	}
	v := Session{Event: Event(m["event"]), JID: m["jid"], Fingerprint: m["fingerprint"]}
	if _, ok := m["event"]; ok && v.Event != EventBound && v.Event != EventClosed {
		return badRequest("event must be bound or closed")
	}
	if err := children(d, "session", nil); err != nil {
		return err
	}
	*s = v
	return nil
}

// childElement is emptyElement for a child: it inherits its parent's
// namespace.
func childElement(local string, attrs ...attr) xml.TokenReader { return child(local, nil, attrs...) }

// sessionList returns the tokens of an element called local holding
// sessions.
func sessionList(local string, sessions []Session, attrs ...attr) xml.TokenReader {
	inner := make([]xml.TokenReader, 0, len(sessions))
	for _, s := range sessions {
		inner = append(inner, s.tokenReader(childElement))
	}
	return element(local, xmlstream.MultiReader(inner...), attrs...)
}

// decodeSessions reads the <session/> children of el.
func decodeSessions(d *xml.Decoder, el string) ([]Session, error) {
	var list []Session
	err := children(d, el, func(c xml.StartElement) error {
		if !inNS(c, "session") {
			return badRequest("<" + el + "/> has an unexpected child <" + c.Name.Local + "/>")
		}
		var s Session
		if err := s.UnmarshalXML(d, c); err != nil {
			return err
		}
		list = append(list, s)
		return nil
	})
	return list, err
}

// Notices is a batch of session notices the plugin sends in a message of
// type normal, which gets no answer:
//
//	<notices xmlns='urn:x-saslcert:plugin:0'>
//	  <session event='bound' jid='alice@example.org/tablet' fingerprint='sha256:…'/>
//	  <session event='closed' jid='alice@example.org/phone' fingerprint='sha256:…'/>
//	</notices>
type Notices struct {
	Sessions []Session
}

// TokenReader implements xmlstream.Marshaler.
func (n Notices) TokenReader() xml.TokenReader { return sessionList("notices", n.Sessions) }

// WriteXML implements xmlstream.WriterTo.
func (n Notices) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, n.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (n Notices) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, n.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: only <session/> children, each
// with an event.
func (n *Notices) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "notices"); err != nil {
		return err
	}
	list, err := decodeSessions(d, "notices")
	if err != nil {
		return err
	}
	for _, s := range list {
		if s.Event == "" {
			return badRequest("event must be bound or closed")
		}
	}
	*n = Notices{Sessions: list}
	return nil
}

// LookupByFingerprint is the value of SessionsQuery.Lookup that lets lookups
// name the certificate by fingerprint.
const LookupByFingerprint = "fingerprint"

// SessionsQuery is the component's question (an IQ get to a server domain)
// after every connect, and whenever the plugin must forget everything it
// cached; it says what the plugin may do on this connection:
//
//	<sessions xmlns='urn:x-saslcert:plugin:0' lookup='fingerprint' cache-ttl='60'/>
type SessionsQuery struct {
	// Lookup is LookupByFingerprint if lookups may name the certificate by
	// fingerprint; empty: they send it whole.
	Lookup string
	// CacheTTL is how many seconds the plugin may cache answers; 0 leaves
	// the attribute out (cache nothing).
	CacheTTL int64
}

// TokenReader implements xmlstream.Marshaler.
func (q SessionsQuery) TokenReader() xml.TokenReader {
	ttl := ""
	if q.CacheTTL > 0 {
		ttl = strconv.FormatInt(q.CacheTTL, 10)
	}
	return emptyElement("sessions", attr{name: "lookup", value: q.Lookup}, attr{name: "cache-ttl", value: ttl})
}

// WriteXML implements xmlstream.WriterTo.
func (q SessionsQuery) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, q.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (q SessionsQuery) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, q.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: cache-ttl, if present, is a
// non-negative integer; no children.
func (q *SessionsQuery) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "sessions"); err != nil {
		return err
	}
	m, err := readAttrs(start, "lookup", "cache-ttl")
	if err != nil {
		return err
	}
	v := SessionsQuery{Lookup: m["lookup"]}
	if _, ok := m["cache-ttl"]; ok {
		n, err := m.count("sessions", "cache-ttl")
		if err != nil {
			return err
		}
		v.CacheTTL = int64(n)
	}
	if err := children(d, "sessions", nil); err != nil {
		return err
	}
	*q = v
	return nil
}

// SessionList is the plugin's answer to a SessionsQuery: the sessions of
// its domain that logged in with a certificate (Session without Event).
//
//	<sessions xmlns='urn:x-saslcert:plugin:0'>
//	  <session jid='alice@example.org/tablet' fingerprint='sha256:…'/>
//	</sessions>
type SessionList struct {
	Sessions []Session
}

// TokenReader implements xmlstream.Marshaler.
func (l SessionList) TokenReader() xml.TokenReader { return sessionList("sessions", l.Sessions) }

// WriteXML implements xmlstream.WriterTo.
func (l SessionList) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, l.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (l SessionList) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, l.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: only <session/> children.
func (l *SessionList) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "sessions"); err != nil {
		return err
	}
	list, err := decodeSessions(d, "sessions")
	if err != nil {
		return err
	}
	*l = SessionList{Sessions: list}
	return nil
}
