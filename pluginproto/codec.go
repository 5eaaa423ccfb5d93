package pluginproto

import (
	"encoding/xml"
	"strconv"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/stanza"
)

// badRequest is the error of every decoding failure.
func badRequest(text string) stanza.Error {
	return stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: map[string]string{"": text}}
}

// attr is one attribute to write; empty values are left out unless always
// is set.
type attr struct {
	name, value string
	always      bool
}

// emptyElement returns the tokens of <local xmlns=NS attrs.../>.
func emptyElement(local string, attrs ...attr) xml.TokenReader {
	return element(local, nil, attrs...)
}

// element returns the tokens of <local xmlns=NS attrs...>inner</local>.
func element(local string, inner xml.TokenReader, attrs ...attr) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Space: NS, Local: local}}
	for _, a := range attrs {
		if a.value != "" || a.always {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.name}, Value: a.value})
		}
	}
	return xmlstream.Wrap(inner, start)
}

// child returns the tokens of a child element called local that inherits its
// parent's namespace.
func child(local string, inner xml.TokenReader, attrs ...attr) xml.TokenReader {
	start := xml.StartElement{Name: xml.Name{Local: local}}
	for _, a := range attrs {
		if a.value != "" || a.always {
			start.Attr = append(start.Attr, xml.Attr{Name: xml.Name{Local: a.name}, Value: a.value})
		}
	}
	return xmlstream.Wrap(inner, start)
}

func marshal(e *xml.Encoder, r xml.TokenReader) error {
	if _, err := xmlstream.Copy(e, r); err != nil {
		return err
	}
	return e.Flush()
}

// attrs is the unqualified attributes of an element, by name.
type attrs map[string]string

// readAttrs returns the unqualified attributes of start among names;
// others are ignored. An attribute given twice is an error.
func readAttrs(start xml.StartElement, names ...string) (attrs, error) {
	m := make(attrs, len(names))
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		for _, n := range names {
			if a.Name.Local != n {
				continue
			}
			if _, dup := m[n]; dup {
				return nil, badRequest(n + " is given twice in <" + start.Name.Local + "/>")
			}
			m[n] = a.Value
		}
	}
	return m, nil
}

// need returns the attribute name, or an error if it is absent or empty.
func (m attrs) need(el, name string) (string, error) {
	v := m[name]
	if v == "" {
		return "", badRequest("<" + el + "/> has no " + name)
	}
	return v, nil
}

// count reads the non-negative integer attribute name (required).
func (m attrs) count(el, name string) (int, error) {
	v, err := m.need(el, name)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, badRequest(name + " of <" + el + "/> must be a non-negative integer, not " + strconv.Quote(v))
	}
	return n, nil
}

// boolean reads the attribute name, which must be true or false (required).
func (m attrs) boolean(el, name string) (bool, error) {
	switch v := m[name]; v {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "":
		return false, badRequest("<" + el + "/> has no " + name)
	default:
		return false, badRequest(name + " of <" + el + "/> must be true or false, not " + strconv.Quote(v))
	}
}

// checkName checks that start is the element local in NS.
func checkName(start xml.StartElement, local string) error {
	if start.Name.Space != NS || start.Name.Local != local {
		return badRequest("expected <" + local + " xmlns='" + NS + "'/>, got <" + start.Name.Local + " xmlns='" + start.Name.Space + "'/>")
	}
	return nil
}

// children reads the content of el up to and including its end, calling f
// for each child element (f must read it to its end, e.g. with d.Skip).
// Text other than white space is an error; f == nil refuses every child.
func children(d *xml.Decoder, el string, f func(xml.StartElement) error) error {
	for {
		tok, err := d.Token()
		if err != nil {
			return badRequest("<" + el + "/> ends early or is not well-formed XML")
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if f == nil {
				return badRequest("<" + el + "/> has an unexpected child <" + tok.Name.Local + "/>")
			}
			if err := f(tok); err != nil {
				return err
			}
		case xml.CharData:
			if strings.TrimLeft(string(tok), " \t\r\n") != "" {
				return badRequest("<" + el + "/> has unexpected text")
			}
		case xml.EndElement:
			return nil
		}
	}
}

// inNS reports whether a child element is in NS (or inherits it: the
// decoder has resolved it already).
func inNS(start xml.StartElement, local string) bool {
	return start.Name.Space == NS && start.Name.Local == local
}
