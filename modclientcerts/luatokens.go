// The tokens of the Lua the serializer writes: strings and numbers.

package modclientcerts

import (
	"fmt"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// simpleEscapes are Lua's one-character escapes (a backslash before a line
// break stands for the line break).
var simpleEscapes = map[byte]byte{'a': '\a', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t', 'v': '\v',
	'\\': '\\', '"': '"', '\'': '\'', '\n': '\n'}

// str reads a quoted string with Lua's escapes: \a \b \f \n \r \t \v \\ \"
// \' \<newline>, \ddd (at most 255) and \xXX. \z and \u{...} are refused
// (the serializer never writes them), as are raw line breaks and control
// characters other than tab. The result is raw bytes, not necessarily UTF-8.
func (p *parser) str() (string, error) {
	quote := p.peek()
	p.advance()
	var b []byte
	for {
		if p.pos >= len(p.src) {
			return "", p.fail("string not closed before the end of the file")
		}
		c := p.src[p.pos]
		switch {
		case c == quote:
			p.advance()
			return string(b), nil
		case c == '\n' || c == '\r':
			return "", p.fail("line break inside a string")
		case c < 0x20 && c != '\t' || c == 0x7f:
			return "", p.fail(fmt.Sprintf("control character 0x%02x inside a string", c))
		case c != '\\':
			b = append(b, c)
			p.advance()
			continue
		}
		p.advance() // the backslash
		if p.pos >= len(p.src) {
			return "", p.fail("string not closed before the end of the file")
		}
		e := p.src[p.pos]
		if r, ok := simpleEscapes[e]; ok {
			b = append(b, r)
			p.advance()
			continue
		}
		switch {
		case e >= '0' && e <= '9':
			n := 0
			for i := 0; i < 3 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9'; i++ {
				n = n*10 + int(p.src[p.pos]-'0')
				p.advance()
			}
			if n > 255 {
				return "", p.fail(fmt.Sprintf("escape \\%d is larger than 255", n))
			}
			b = append(b, byte(n))
		case e == 'x':
			p.advance()
			if len(p.src)-p.pos < 2 {
				return "", p.fail("escape \\x needs two hex digits")
			}
			n, err := strconv.ParseUint(string(p.src[p.pos:p.pos+2]), 16, 8)
			if err != nil {
				return "", p.fail("escape \\x needs two hex digits")
			}
			p.advance()
			p.advance()
			b = append(b, byte(n))
		default:
			r, _ := utf8.DecodeRune(p.src[p.pos:])
			if unicode.IsGraphic(r) {
				return "", p.fail(fmt.Sprintf("unknown escape \\%c in a string", r))
			}
			return "", p.fail(fmt.Sprintf("unknown escape: backslash before byte 0x%02x in a string", e))
		}
	}
}

// number reads what the serializer writes for numbers: an integer ("%d"),
// a float ("%.18g") or (1/0), (-1/0), (0/0). It keeps the source text.
func (p *parser) number() (value, error) {
	for _, special := range []string{"(1/0)", "(-1/0)", "(0/0)"} {
		if p.word(special) {
			return value{kind: kindNumber, s: special}, nil
		}
	}
	start := p.pos
	line, col := p.line, p.col
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c >= '0' && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.advance()
			continue
		}
		break
	}
	text := string(p.src[start:p.pos])
	if _, err := strconv.ParseFloat(text, 64); text == "" || err != nil || text[0] == '+' || text[len(text)-1] == '.' {
		return value{}, &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf("%q is not a number", text)}
	}
	if p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		return value{}, p.fail(fmt.Sprintf("%s inside a number", p.what()))
	}
	return value{kind: kindNumber, s: text}, nil
}
