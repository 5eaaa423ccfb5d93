package xep0257

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/stanza"
)

// Request is a decoded XEP-0257 payload: *Items, *Append, *Disable or *Revoke.
type Request interface{ isRequest() }

// Decode reads one XEP-0257 payload whose start element has already been
// read, from r, and checks it against the IQ type (items: get; append,
// disable, revoke: set). It does no I/O besides reading r and never blocks on
// anything else, so it may run on the stream goroutine. Its errors are
// stanza.Error values (bad-request, feature-not-implemented, ...) ready to send.
//
// Decode applies DefaultLimits; Limits.Decode applies others.
func Decode(typ stanza.IQType, start xml.StartElement, r xml.TokenReader) (Request, error) {
	return DefaultLimits().Decode(typ, start, r)
}

// Decode is the package-level Decode with the limits l (zero fields take
// their defaults). It is strict:
//
//   - a payload that is not items, append, disable or revoke in NS is
//     cancel/feature-not-implemented;
//   - the wrong IQ type for the payload, a missing, empty or repeated <name/>
//     or <x509cert/>, an unknown child element, a child element inside
//     <name/> or <x509cert/>, text outside the children, or XML that ends early
//     is modify/bad-request;
//   - a name that is blank after trimming white space, contains a control
//     character or (append only) is longer than MaxNameLen characters, an
//     <x509cert/> that is not base64 or is PEM, is modify/not-acceptable;
//   - an <x509cert/> with more than MaxCertSize bytes of base64 (white space
//     not counted) is modify/policy-violation.
//
// Names are trimmed of surrounding white space. Decode stops reading at the
// first error, so it never holds more than the limits allow.
func (l Limits) Decode(typ stanza.IQType, start xml.StartElement, r xml.TokenReader) (Request, error) {
	if err := checkType(typ, start.Name); err != nil {
		return nil, err
	}
	return l.withDefaults().decode(start, r)
}

// checkType checks that name is a request in NS and typ the IQ type it needs.
func checkType(typ stanza.IQType, name xml.Name) error {
	if name.Space != NS {
		return featureNotImplemented(fmt.Sprintf("<%s xmlns='%s'/> is not a %s request", name.Local, name.Space, NS))
	}
	want := stanza.SetIQ
	switch name.Local {
	case "items":
		want = stanza.GetIQ
	case "append", "disable", "revoke":
	default:
		return featureNotImplemented(fmt.Sprintf("<%s/> is not a %s request; expected items, append, disable or revoke", name.Local, NS))
	}
	if typ != want {
		return badRequest(fmt.Sprintf("<%s/> must be sent in an IQ of type %s, not %q", name.Local, want, typ))
	}
	return nil
}

// noLimits decodes without size limits (for UnmarshalXML).
var noLimits = Limits{}

// nameSlack is the white space allowed around a name beyond its maximum
// length, when reading.
const nameSlack = 1024

// decode decodes the request start (in NS) from r. Limits that are <= 0 are
// not applied.
func (l Limits) decode(start xml.StartElement, r xml.TokenReader) (Request, error) {
	d := &decoder{r: r, l: l}
	switch start.Name.Local {
	case "items":
		err := d.children("items", func(c xml.StartElement) error {
			return unexpected(c, "items")
		})
		if err != nil {
			return nil, err
		}
		return &Items{XMLName: nameItems}, nil
	case "append":
		return d.append()
	case "disable":
		name, err := d.nameOnly("disable")
		if err != nil {
			return nil, err
		}
		return &Disable{XMLName: nameDisable, Name: name}, nil
	case "revoke":
		name, err := d.nameOnly("revoke")
		if err != nil {
			return nil, err
		}
		return &Revoke{XMLName: nameRevoke, Name: name}, nil
	}
	return nil, featureNotImplemented(fmt.Sprintf("<%s/> is not a %s request; expected items, append, disable or revoke", start.Name.Local, NS))
}

// decoder reads the inside of one payload element.
type decoder struct {
	r   xml.TokenReader
	l   Limits
	err error // returned by the next call to next, after a final token
}

// next returns the next token, never a token and an error together.
func (d *decoder) next() (xml.Token, error) {
	if d.err != nil {
		return nil, d.err
	}
	tok, err := d.r.Token()
	if err != nil {
		if tok != nil {
			d.err = err
			return tok, nil
		}
		return nil, err
	}
	return tok, nil
}

func malformed() stanza.Error {
	return badRequest("the payload ends early or is not well-formed XML")
}

// children calls f for each child element of the element el whose start has
// been read; f must read the child up to and including its end. A plain
// io.EOF ends el too (for readers that stop at its end).
func (d *decoder) children(el string, f func(xml.StartElement) error) error {
	for {
		tok, err := d.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return malformed()
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if err := f(tok); err != nil {
				return err
			}
		case xml.EndElement:
			return nil
		case xml.CharData:
			if !isBlank(tok) {
				return badRequest(fmt.Sprintf("<%s/> must not contain text outside its child elements", el))
			}
		case xml.Comment:
		default:
			return badRequest(fmt.Sprintf("<%s/> must contain only elements", el))
		}
	}
}

var errTooLong = errors.New("xep0257: text too long")

// text reads the content of the element el whose start has been read, up to
// and including its end; it must be text only. It keeps the text without XML
// white space if strip is set, and returns what it has with errTooLong as
// soon as that exceeds max bytes (max <= 0: no limit).
func (d *decoder) text(el string, strip bool, max int) (string, error) {
	var b []byte
	for {
		tok, err := d.next()
		if err != nil {
			return "", malformed()
		}
		switch tok := tok.(type) {
		case xml.CharData:
			if strip {
				for _, c := range tok {
					if !isXMLSpace(c) {
						b = append(b, c)
					}
				}
			} else {
				b = append(b, tok...)
			}
			if max > 0 && len(b) > max {
				return string(b), errTooLong
			}
		case xml.EndElement:
			return string(b), nil
		case xml.StartElement:
			return "", badRequest(fmt.Sprintf("<%s/> must contain only text, not <%s/>", el, tok.Name.Local))
		case xml.Comment:
		default:
			return "", badRequest(fmt.Sprintf("<%s/> must contain only text", el))
		}
	}
}

// nameText reads a <name/> element and checks it. Names longer than
// MaxNameLen are refused only when appending: one stored under larger limits
// must stay removable.
func (d *decoder) nameText(appending bool) (string, error) {
	max := 0
	if d.l.MaxNameLen > 0 {
		max = 4*d.l.MaxNameLen + nameSlack
	}
	raw, err := d.text("name", false, max)
	if err == errTooLong {
		if appending {
			return "", nameTooLong(d.l.MaxNameLen)
		}
		return "", notAcceptable("name is too long")
	}
	if err != nil {
		return "", err
	}
	return d.l.checkName(raw, appending)
}

// checkName validates a name as received (raw) and returns it trimmed.
func (l Limits) checkName(raw string, appending bool) (string, error) {
	if raw == "" {
		return "", badRequest("<name/> is empty")
	}
	name := strings.TrimSpace(raw)
	switch {
	case name == "":
		return "", notAcceptable("name is blank")
	case !utf8.ValidString(name):
		return "", notAcceptable("name is not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", notAcceptable("name contains a control character")
	case appending && l.MaxNameLen > 0 && utf8.RuneCountInString(name) > l.MaxNameLen:
		return "", nameTooLong(l.MaxNameLen)
	}
	return name, nil
}

// nameOnly reads the inside of <disable/> or <revoke/>: exactly one <name/>.
func (d *decoder) nameOnly(el string) (string, error) {
	var name string
	var have bool
	err := d.children(el, func(c xml.StartElement) error {
		if !inNS(c.Name) || c.Name.Local != "name" {
			return unexpected(c, el)
		}
		if have {
			return badRequest(fmt.Sprintf("<%s/> has more than one <name/>", el))
		}
		have = true
		var err error
		name, err = d.nameText(false)
		return err
	})
	if err != nil {
		return "", err
	}
	if !have {
		return "", badRequest(fmt.Sprintf("<%s/> has no <name/>", el))
	}
	return name, nil
}

// append reads the inside of <append/>.
func (d *decoder) append() (Request, error) {
	a := &Append{XMLName: nameAppend}
	var haveName, haveCert, haveFlag bool
	var b64 string
	err := d.children("append", func(c xml.StartElement) error {
		if !inNS(c.Name) {
			return unexpected(c, "append")
		}
		switch c.Name.Local {
		case "name":
			if haveName {
				return badRequest("<append/> has more than one <name/>")
			}
			haveName = true
			var err error
			a.Name, err = d.nameText(true)
			return err
		case "x509cert":
			if haveCert {
				return badRequest("<append/> has more than one <x509cert/>")
			}
			haveCert = true
			var err error
			b64, err = d.text("x509cert", true, d.l.MaxCertSize)
			if err == errTooLong {
				if looksPEM(b64) {
					return notAcceptable(textPEM)
				}
				return certTooLarge(d.l.MaxCertSize)
			}
			if err != nil {
				return err
			}
			if b64 == "" {
				return badRequest("<x509cert/> is empty")
			}
			return nil
		case "no-cert-management":
			if haveFlag {
				return badRequest("<append/> has more than one <no-cert-management/>")
			}
			haveFlag = true
			a.NoCertManagement = true
			s, err := d.text("no-cert-management", true, 1)
			if err == errTooLong || (err == nil && s != "") {
				return badRequest("<no-cert-management/> must be empty")
			}
			return err
		}
		return unexpected(c, "append")
	})
	if err != nil {
		return nil, err
	}
	if !haveName {
		return nil, badRequest("<append/> has no <name/>")
	}
	if !haveCert {
		return nil, badRequest("<append/> has no <x509cert/>")
	}
	if looksPEM(b64) {
		return nil, notAcceptable(textPEM)
	}
	if a.Cert, err = decodeBase64(b64); err != nil {
		return nil, notAcceptable(textBadBase64)
	}
	return a, nil
}

// check applies Decode's rules to a request built in code (Process accepts
// those too) and returns it normalised.
func (l Limits) check(req Request) (Request, error) {
	switch r := req.(type) {
	case *Items:
		if r != nil {
			return r, nil
		}
	case *Append:
		if r == nil {
			break
		}
		name, err := l.checkName(r.Name, true)
		if err != nil {
			return nil, err
		}
		if len(r.Cert) == 0 {
			return nil, badRequest("<x509cert/> is empty")
		}
		if l.MaxCertSize > 0 && base64Len(len(r.Cert)) > l.MaxCertSize {
			return nil, certTooLarge(l.MaxCertSize)
		}
		c := *r
		c.Name = name
		return &c, nil
	case *Disable:
		if r == nil {
			break
		}
		name, err := l.checkName(r.Name, false)
		if err != nil {
			return nil, err
		}
		return &Disable{XMLName: nameDisable, Name: name}, nil
	case *Revoke:
		if r == nil {
			break
		}
		name, err := l.checkName(r.Name, false)
		if err != nil {
			return nil, err
		}
		return &Revoke{XMLName: nameRevoke, Name: name}, nil
	}
	return nil, badRequest("no request")
}

// base64Len is the length of the standard base64 encoding of n bytes.
func base64Len(n int) int { return (n + 2) / 3 * 4 }

// looksPEM reports whether the (white space stripped) content of an
// <x509cert/> is PEM armour rather than bare base64.
func looksPEM(s string) bool {
	return strings.HasPrefix(s, "-----") || strings.Contains(s, "-----BEGIN")
}

// inNS reports whether a child element is in NS; tokens from readers that do
// not resolve namespaces (and our own TokenReaders) leave it empty.
func inNS(n xml.Name) bool { return n.Space == NS || n.Space == "" }

func unexpected(c xml.StartElement, parent string) error {
	if inNS(c.Name) {
		return badRequest(fmt.Sprintf("unexpected element <%s/> in <%s/>", c.Name.Local, parent))
	}
	return badRequest(fmt.Sprintf("unexpected element <%s xmlns='%s'/> in <%s/>", c.Name.Local, c.Name.Space, parent))
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if !isXMLSpace(c) {
			return false
		}
	}
	return true
}
