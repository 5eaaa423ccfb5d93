package modclientcerts

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// Entry is one certificate of a user's file.
type Entry struct {
	// Name is the certificate's name (the table key).
	Name string
	// DER is the certificate (nil when Err is set).
	DER []byte
	// NoCertManagement: sessions that log in with it may not manage
	// certificates (XEP-0257 <no-cert-management/>).
	NoCertManagement bool
	// Err says why the entry cannot be used (an *EntryError); the other
	// entries of the file are still read.
	Err error
}

// EntryError: an entry of a file is not a usable certificate.
type EntryError struct {
	Name string
	Line int
	Msg  string
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("modclientcerts: entry %q (line %d): %s", e.Name, e.Line, e.Msg)
}

// The fields of an entry, as mod_client_certs writes them.
var knownFields = []string{"digest", "name", "no_cert_management", "pem", "x509cert"}

// Parse reads one user's file (see the package documentation) and returns
// its entries ordered by name. A file that is not the serializer's Lua, or
// whose value is not a table keyed by strings, gives a *SyntaxError (or
// ErrTooLarge) and no entries; an unusable entry is returned with Err set.
// An empty table gives no entries and no error (Prosody deletes such files,
// but an old one may remain).
func Parse(data []byte) ([]Entry, error) {
	v, err := parseReturn(data)
	if err != nil {
		return nil, err
	}
	if v.kind != kindTable {
		return nil, &SyntaxError{Line: 1, Col: 1, Msg: fmt.Sprintf("the file returns %s, want a table of certificates", v.kind)}
	}
	entries := make([]Entry, 0, len(v.fields))
	for _, f := range v.fields {
		if f.key.kind != kindString {
			return nil, &SyntaxError{Line: f.line, Col: f.col, Msg: fmt.Sprintf("key %s: want certificate names (strings) as keys", f.key.s)}
		}
		e := Entry{Name: f.key.s}
		der, noMgmt, msg := readEntry(f)
		if msg != "" {
			e.Err = &EntryError{Name: e.Name, Line: f.line, Msg: msg}
		} else {
			e.DER, e.NoCertManagement = der, noMgmt
		}
		entries = append(entries, e)
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}

// readEntry checks one entry and returns its certificate, or a message
// saying why it cannot be used.
func readEntry(f field) (der []byte, noMgmt bool, msg string) {
	if f.val.kind != kindTable {
		return nil, false, fmt.Sprintf("is %s, want a table", f.val.kind)
	}
	got := make(map[string]value, len(f.val.fields))
	for _, g := range f.val.fields {
		if g.key.kind != kindString || !slices.Contains(knownFields, g.key.s) {
			return nil, false, fmt.Sprintf("unknown field %s (known: %s)", quoteKey(g.key), strings.Join(knownFields, ", "))
		}
		want := kindString
		if g.key.s == "no_cert_management" {
			want = kindBool
		}
		if g.val.kind != want {
			return nil, false, fmt.Sprintf("field %q is %s, want %s", g.key.s, g.val.kind, want)
		}
		got[g.key.s] = g.val
	}
	if n, ok := got["name"]; ok && n.s != f.key.s {
		return nil, false, fmt.Sprintf("its name field says %q", n.s)
	}
	noMgmt = got["no_cert_management"].b
	x, hasX := got["x509cert"]
	p, hasP := got["pem"]
	if !hasX && !hasP {
		return nil, false, "has neither x509cert nor pem"
	}
	if hasX {
		// The module trims the text and Prosody's base64 decoder skips
		// line breaks; both are allowed here, nothing else.
		clean := strings.Map(func(r rune) rune {
			if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
				return -1
			}
			return r
		}, x.s)
		b, err := base64.StdEncoding.DecodeString(clean)
		if err != nil || len(b) == 0 {
			return nil, false, "x509cert is not base64 of a certificate"
		}
		der = b
	}
	if hasP {
		blk, rest := pem.Decode([]byte(p.s))
		if blk == nil || blk.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
			return nil, false, "pem is not exactly one PEM CERTIFICATE block"
		}
		if der != nil && !bytes.Equal(der, blk.Bytes) {
			// LuaSec re-encodes what it parsed: a difference means the
			// module stored something other than what it checked.
			return nil, false, "x509cert and pem hold different certificates"
		}
		der = blk.Bytes
	}
	if d, ok := got["digest"]; ok {
		sum := sha1.Sum(der)
		if !strings.EqualFold(strings.ReplaceAll(d.s, ":", ""), hex.EncodeToString(sum[:])) {
			return nil, false, "digest is not the SHA-1 of the certificate"
		}
	}
	return der, noMgmt, ""
}

// ReadFile reads and parses the file at path (see Parse), reading at most
// MaxFileSize bytes. Errors: the file system's, ErrTooLarge, *SyntaxError
// (wrapped with the path).
func ReadFile(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	entries, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return entries, nil
}
