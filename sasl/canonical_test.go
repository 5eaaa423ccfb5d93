package sasl_test

import (
	"errors"
	"testing"

	"github.com/saslcert/saslcert/sasl"
)

// TestParseJIDForms: a JID is accepted only if the component's RFC 7622 form
// is what the XMPP server's RFC 3920 stringprep (Prosody's jid.prep) makes
// of it; spellings both forms map to the same account (upper case, full
// width) are the account itself.
func TestParseJIDForms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means refused with a *JIDFormError
		part string // the part the refusal names
	}{
		{name: "ok/ascii", in: "alice@example.org", want: "alice@example.org"},
		{name: "ok/domain", in: "example.org", want: "example.org"},
		{name: "ok/full", in: "alice@example.org/phone", want: "alice@example.org/phone"},
		{name: "ok/upper-case", in: "ALICE@Example.ORG", want: "alice@example.org"},
		{name: "ok/full-width", in: "ａｌｉｃｅ@example.org", want: "alice@example.org"},
		{name: "ok/trailing-dot", in: "alice@example.org.", want: "alice@example.org"},
		{name: "ok/accented", in: "josé@example.org", want: "josé@example.org"},
		{name: "ok/accented-upper", in: "JOSÉ@example.org", want: "josé@example.org"},
		{name: "ok/greek-sigma", in: "σοφία@example.org", want: "σοφία@example.org"},
		{name: "ok/greek-upper", in: "ΣΟΦΙΑ@example.org", want: "σοφια@example.org"},
		{name: "ok/greek-upper-final-sigma", in: "ΟΔΟΣ@example.org", want: "οδοσ@example.org"},
		{name: "ok/cyrillic", in: "Иван@example.org", want: "иван@example.org"},
		{name: "ok/resource-case-kept", in: "alice@example.org/Phone", want: "alice@example.org/Phone"},
		{name: "ok/resource-space", in: "alice@example.org/my phone", want: "alice@example.org/my phone"},
		{name: "ok/ipv4", in: "alice@127.0.0.1", want: "alice@127.0.0.1"},
		{name: "ok/ipv6", in: "alice@[::1]/x", want: "alice@[::1]/x"},
		{name: "ok/resource-slash", in: "alice@example.org/a/b@c", want: "alice@example.org/a/b@c"},
		{name: "ok/turkish-dotted-I", in: "İ@example.org", want: "i\u0307@example.org"},
		{name: "ok/idn-a-label", in: "alice@xn--bcher-kva.example", want: "alice@bücher.example"},
		{name: "ok/idn-u-label", in: "alice@bücher.example", want: "alice@bücher.example"},

		{name: "refused/sharp-s", in: "straße@example.org", part: "localpart"},
		{name: "refused/capital-sharp-s", in: "STRAẞE@example.org", part: "localpart"},
		{name: "refused/final-sigma", in: "σοφίας@example.org", part: "localpart"},
		{name: "refused/ligature-resource", in: "alice@example.org/ﬀ", part: "resourcepart"},
		{name: "refused/full-width-resource", in: "alice@example.org/ｐｈｏｎｅ", part: "resourcepart"},
		{name: "refused/sharp-s-domain", in: "alice@straße.example", part: "domainpart"},
		{name: "refused/unassigned-in-3.2", in: "\u0221@example.org", part: "localpart"},
		{name: "refused/cherokee-lower", in: "\uAB70@example.org", part: "localpart"},
		{name: "refused/cherokee-upper", in: "\u13A0@example.org", part: "localpart"},
		{name: "refused/resource-mongolian-todo-soft-hyphen", in: "alice@example.org/a\u1806b", part: "resourcepart"},
		{name: "refused/resource-ligature-fi", in: "alice@example.org/ﬁ", part: "resourcepart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := sasl.ParseJID(tt.in)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("ParseJID(%q): %v", tt.in, err)
				}
				if j.String() != tt.want {
					t.Fatalf("ParseJID(%q) = %q, want %q", tt.in, j.String(), tt.want)
				}
				if err := sasl.CanonicalJID(j); err != nil {
					t.Fatalf("CanonicalJID(%q): %v", j.String(), err)
				}
				return
			}
			var fe *sasl.JIDFormError
			if !errors.As(err, &fe) || !errors.Is(err, sasl.ErrJIDForms) {
				t.Fatalf("ParseJID(%q) = %q, %v; want a *JIDFormError", tt.in, j.String(), err)
			}
			if fe.Part != tt.part {
				t.Errorf("refusal names the %s, want the %s: %v", fe.Part, tt.part, err)
			}
			t.Log(err)
		})
	}
}

// TestParseServerJID: a JID from the server (already stringprep'd) is used
// only if it is its own RFC 7622 form.
func TestParseServerJID(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
		part     string
	}{
		{name: "ok/bare", in: "alice@example.org", ok: true},
		{name: "ok/full", in: "alice@example.org/phone", ok: true},
		{name: "ok/resource-case", in: "alice@example.org/Phone", ok: true},
		{name: "ok/resource-newer-symbol", in: "alice@example.org/\U0001F600", ok: true},
		{name: "ok/sharp-s-resource", in: "alice@example.org/straße", ok: true},
		{name: "refused/upper-case-local", in: "Alice@example.org/phone", part: "localpart"},
		{name: "refused/cherokee-upper", in: "\u13A0@example.org/phone", part: "localpart"},
		{name: "refused/upper-domain", in: "alice@Example.org/phone", part: "domainpart"},
		{name: "refused/resource-nbsp", in: "alice@example.org/a\u00a0b", part: "resourcepart"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j, err := sasl.ParseServerJID(tt.in)
			if tt.ok {
				if err != nil || j.String() != tt.in {
					t.Fatalf("ParseServerJID(%q) = %q, %v", tt.in, j.String(), err)
				}
				return
			}
			var fe *sasl.JIDFormError
			if !errors.As(err, &fe) || fe.Part != tt.part {
				t.Fatalf("ParseServerJID(%q) = %q, %v; want a *JIDFormError for the %s", tt.in, j.String(), err, tt.part)
			}
			t.Log(err)
		})
	}
}
