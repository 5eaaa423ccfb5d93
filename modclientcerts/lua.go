package modclientcerts

import (
	"errors"
	"fmt"
	"strconv"
)

// Bounds of what the reader accepts.
const (
	// MaxFileSize is the largest file read (bytes). A user with 100
	// certificates of 16 KiB, each kept twice (x509cert and pem), stays
	// well below it.
	MaxFileSize = 8 << 20
	// MaxDepth is the deepest nesting of tables (the module writes 2).
	MaxDepth = 8
	// MaxFields is the largest number of fields in one table.
	MaxFields = 10000
)

// SyntaxError: the data is not Lua that util.serialization writes, or
// breaks a bound. Line and Col (1-based, columns in bytes) say where.
type SyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("modclientcerts: line %d, column %d: %s", e.Line, e.Col, e.Msg)
}

// ErrTooLarge: the file is larger than MaxFileSize.
var ErrTooLarge = errors.New("modclientcerts: file too large")

// kind is the type of a Lua value the reader accepts.
type kind int

const (
	kindString kind = iota + 1
	kindBool
	kindNumber
	kindTable
)

func (k kind) String() string {
	switch k {
	case kindString:
		return "a string"
	case kindBool:
		return "a boolean"
	case kindNumber:
		return "a number"
	case kindTable:
		return "a table"
	}
	return "nothing"
}

// value is one Lua value: a string (s, raw bytes), a boolean (b), a number
// (s, its source text) or a table (fields, in source order).
type value struct {
	kind   kind
	s      string
	b      bool
	fields []field
}

// field is one key = value of a table. Keys are strings or numbers
// (positional fields get their index as a number).
type field struct {
	key  value
	val  value
	line int
	col  int
}

// parseReturn reads data as "return <value>;" (the semicolon optional), as
// util.datamanager stores it.
func parseReturn(data []byte) (value, error) {
	if len(data) > MaxFileSize {
		return value{}, fmt.Errorf("%w: %d bytes (at most %d)", ErrTooLarge, len(data), MaxFileSize)
	}
	p := &parser{src: data, line: 1, col: 1}
	p.space()
	if !p.word("return") {
		return value{}, p.fail("want \"return\" at the start")
	}
	if p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		return value{}, p.fail("want \"return\" at the start")
	}
	p.space()
	v, err := p.value(1)
	if err != nil {
		return value{}, err
	}
	p.space()
	if p.peek() == ';' {
		p.advance()
		p.space()
	}
	if p.pos != len(p.src) {
		return value{}, p.fail(fmt.Sprintf("unexpected %s after the returned value", p.what()))
	}
	return v, nil
}

type parser struct {
	src       []byte
	pos       int
	line, col int
}

func (p *parser) fail(msg string) error { return &SyntaxError{Line: p.line, Col: p.col, Msg: msg} }

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *parser) advance() {
	if p.src[p.pos] == '\n' {
		p.line++
		p.col = 1
	} else {
		p.col++
	}
	p.pos++
}

// what describes the byte at pos for an error message.
func (p *parser) what() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	c := p.src[p.pos]
	if c >= 0x21 && c < 0x7f {
		return strconv.Quote(string(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// space skips Lua white space. Comments are not accepted: the serializer
// writes none.
func (p *parser) space() {
	for p.pos < len(p.src) {
		switch p.src[p.pos] {
		case ' ', '\t', '\n', '\r', '\f', '\v':
			p.advance()
		default:
			return
		}
	}
}

// word consumes w if the input continues with it.
func (p *parser) word(w string) bool {
	if len(p.src)-p.pos < len(w) || string(p.src[p.pos:p.pos+len(w)]) != w {
		return false
	}
	for range len(w) {
		p.advance()
	}
	return true
}

func isNameByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// name reads a Lua name (an unquoted key).
func (p *parser) name() string {
	start := p.pos
	for p.pos < len(p.src) && isNameByte(p.src[p.pos]) {
		p.advance()
	}
	return string(p.src[start:p.pos])
}

func (p *parser) value(depth int) (value, error) {
	switch c := p.peek(); {
	case c == '{':
		return p.table(depth)
	case c == '"' || c == '\'':
		s, err := p.str()
		return value{kind: kindString, s: s}, err
	case c == '-' || c >= '0' && c <= '9' || c == '(':
		return p.number()
	case c >= 'a' && c <= 'z':
		line, col := p.line, p.col
		switch w := p.name(); w {
		case "true", "false":
			return value{kind: kindBool, b: w == "true"}, nil
		default:
			return value{}, &SyntaxError{Line: line, Col: col, Msg: fmt.Sprintf("want a string, number, boolean or table, not %q", w)}
		}
	}
	return value{}, p.fail(fmt.Sprintf("want a string, number, boolean or table, not %s", p.what()))
}

// table reads a table constructor: fields "[key] = value", "name = value"
// or "value", separated by ";" or ",", with an optional trailing separator.
// Duplicate keys are refused (Lua would keep the last one silently).
func (p *parser) table(depth int) (value, error) {
	if depth > MaxDepth {
		return value{}, p.fail(fmt.Sprintf("tables nested deeper than %d", MaxDepth))
	}
	p.advance() // {
	t := value{kind: kindTable}
	seen := make(map[keyID]bool)
	next := 1
	for {
		p.space()
		if p.peek() == '}' {
			p.advance()
			return t, nil
		}
		if len(t.fields) == MaxFields {
			return value{}, p.fail(fmt.Sprintf("more than %d fields in one table", MaxFields))
		}
		f := field{line: p.line, col: p.col}
		switch c := p.peek(); {
		case c == '[':
			p.advance()
			p.space()
			if c := p.peek(); c == '{' {
				return value{}, p.fail("a table as a key")
			}
			k, err := p.value(depth + 1)
			if err != nil {
				return value{}, err
			}
			if k.kind != kindString && k.kind != kindNumber {
				return value{}, &SyntaxError{Line: f.line, Col: f.col, Msg: fmt.Sprintf("%s as a key", k.kind)}
			}
			p.space()
			if p.peek() != ']' {
				return value{}, p.fail(fmt.Sprintf("want \"]\" after the key, not %s", p.what()))
			}
			p.advance()
			p.space()
			if p.peek() != '=' {
				return value{}, p.fail(fmt.Sprintf("want \"=\" after the key, not %s", p.what()))
			}
			p.advance()
			f.key = k
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			save := *p
			n := p.name()
			p.space()
			if p.peek() == '=' && n != "true" && n != "false" {
				p.advance()
				f.key = value{kind: kindString, s: n}
			} else {
				*p = save // a positional true/false
				f.key = value{kind: kindNumber, s: strconv.Itoa(next)}
				next++
			}
		default:
			f.key = value{kind: kindNumber, s: strconv.Itoa(next)}
			next++
		}
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return value{}, err
		}
		f.val = v
		if k := (keyID{f.key.kind, f.key.s}); seen[k] {
			return value{}, &SyntaxError{Line: f.line, Col: f.col, Msg: fmt.Sprintf("key %s appears twice in one table", quoteKey(f.key))}
		}
		seen[keyID{f.key.kind, f.key.s}] = true
		t.fields = append(t.fields, f)
		p.space()
		switch p.peek() {
		case ';', ',':
			p.advance()
		case '}':
		default:
			return value{}, p.fail(fmt.Sprintf("want \";\", \",\" or \"}\" after a field, not %s", p.what()))
		}
	}
}

// quoteKey shows a key in messages.
func quoteKey(k value) string {
	if k.kind == kindString {
		return strconv.Quote(k.s)
	}
	return k.s
}

// keyID identifies a key, for finding duplicates.
type keyID struct {
	kind kind
	s    string
}
