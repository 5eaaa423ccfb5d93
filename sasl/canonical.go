package sasl

import (
	"errors"
	"strings"

	"mellium.im/xmpp/jid"
)

// ErrJIDForms is matched (errors.Is) by every *JIDFormError.
var ErrJIDForms = errors.New("sasl: JID has another form on the XMPP server")

// JIDFormError says that a JID is read differently by this component (RFC
// 7622 PRECIS, mellium.im/xmpp/jid) and by an XMPP server that prepares JIDs
// with the RFC 3920 stringprep profiles (Prosody): the two would name
// different accounts (e.g. "straße" stays "straße" here but is "strasse"
// there), so the JID is refused everywhere.
type JIDFormError struct {
	JID       string // the JID as given
	Part      string // "localpart", "domainpart" or "resourcepart"
	Given     string // that part as given
	Component string // that part after RFC 7622 normalisation
	Server    string // that part after RFC 3920 stringprep; "" if Err is set
	Err       error  // why stringprep refused the part, if it did
}

func (e *JIDFormError) Error() string { return "sasl: " + e.detail() }

// detail is Error without the package prefix.
func (e *JIDFormError) detail() string {
	msg := "JID " + quote(e.JID) + ": the " + e.Part + " " + quote(e.Given)
	if e.Err != nil {
		return msg + " is " + quote(e.Component) + " under RFC 7622 but the XMPP server refuses it (RFC 3920 " +
			profileName(e.Part) + ": " + e.Err.Error() + "); use a JID both read the same way"
	}
	return msg + " is " + quote(e.Component) + " under RFC 7622 but " + quote(e.Server) +
		" for the XMPP server (RFC 3920 " + profileName(e.Part) + "); use a JID both read the same way"
}

// Is makes errors.Is(err, ErrJIDForms) true.
func (e *JIDFormError) Is(target error) bool { return target == ErrJIDForms }

func profileName(part string) string {
	switch part {
	case "localpart":
		return "nodeprep"
	case "domainpart":
		return "nameprep"
	}
	return "resourceprep"
}

// ParseJID is the one way JIDs from outside (certificates, authzids, stored
// owners, command-line flags, configuration, enrollment requests) become
// JIDs in this project; JIDs the server already prepared (its session
// notices) go through ParseServerJID. It parses s with mellium.im/xmpp/jid (RFC
// 7622) and then requires that the XMPP server reads s, and the normalised
// JID, as the same JID: for the localpart and the resourcepart, RFC 3920
// stringprep (nodeprep, resourceprep; as Prosody's util.jid.prep does) of the
// part as given and of the normalised part must both equal the normalised
// part; for the domainpart, nameprep of the normalised part must equal it
// (an A-label given is the same domain as the U-label it is normalised to).
//
// Upper case and full-width letters are fine (both forms map them to the
// same lower-case letters); "straße" (nodeprep: "strasse"), a final sigma
// "ς" (nodeprep: "σ"), a resource "ﬀ" (resourceprep: "ff"), a domain
// "straße.example" (nameprep: "strasse.example") or code points unassigned
// in Unicode 3.2 are refused.
//
// Errors: the mellium parse error as is, or a *JIDFormError (ErrJIDForms).
func ParseJID(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	local, domain, resource, err := jid.SplitString(s)
	if err != nil {
		return jid.JID{}, err
	}
	// Both RFC 7622 and Prosody strip one trailing dot before preparing.
	domain = strings.TrimSuffix(domain, ".")
	parts := []struct {
		name, given, normalised string
	}{
		{"localpart", local, j.Localpart()},
		{"domainpart", domain, j.Domainpart()},
		{"resourcepart", resource, j.Resourcepart()},
	}
	for _, p := range parts {
		if p.given == "" && p.normalised == "" {
			continue
		}
		if err := samePart(s, p.name, p.given, p.normalised); err != nil {
			return jid.JID{}, err
		}
	}
	return j, nil
}

// CanonicalJID checks a JID already parsed elsewhere (e.g. a stanza address
// mellium decoded) the way ParseJID checks a string: its string form must
// be read the same way by the XMPP server. Errors as ParseJID.
func CanonicalJID(j jid.JID) error {
	_, err := ParseJID(j.String())
	return err
}

// samePart checks one part: stringprep of the given and of the normalised
// form must both be the normalised form.
func samePart(s, part, given, normalised string) error {
	if given == normalised && stableASCII(part, given) {
		return nil
	}
	profile := nodeprep
	switch part {
	case "domainpart":
		profile = nameprep
	case "resourcepart":
		profile = resourceprep
	}
	inputs := []string{given, normalised}
	if part == "domainpart" {
		// An A-label and its U-label are the same domain (RFC 5890); the
		// server is handed the normalised form, which must stay as it is.
		inputs = inputs[1:]
	}
	for _, in := range inputs {
		out, err := prep(profile, in)
		if err != nil {
			return &JIDFormError{JID: s, Part: part, Given: given, Component: normalised, Err: err}
		}
		if out != normalised {
			return &JIDFormError{JID: s, Part: part, Given: given, Component: normalised, Server: out}
		}
	}
	return nil
}

// stableASCII reports whether stringprep leaves the part v unchanged
// without running it: for the localpart and the domainpart, ASCII lower-case
// letters, digits, '.', '-' and '_' (nodeprep and nameprep only case-fold
// ASCII and prohibit none of these); for the resourcepart, printable ASCII
// (resourceprep maps no ASCII and prohibits only control characters). It is
// the fast path of every login's authzid and owner check; anything else takes
// the full profiles.
func stableASCII(part, v string) bool {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if part == "resourcepart" {
			if c < 0x20 || c > 0x7e {
				return false
			}
			continue
		}
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// serverForm is how a refusal names the server's form of the part.
func serverForm(e *JIDFormError) string {
	if e.Err != nil {
		return "refused (" + e.Err.Error() + ")"
	}
	return quote(e.Server)
}

// ParseServerJID parses a JID the XMPP server has already prepared (a
// session's address in the server plugin's notices): it must be exactly its
// own RFC 7622 normalisation, so that this component and the server name the
// same account and resource. Errors: the mellium parse error as is, or a
// *JIDFormError (ErrJIDForms) whose Server is s.
//
// Unlike ParseJID it does not refuse code points unassigned in Unicode 3.2:
// the server's form is known here, not predicted.
func ParseServerJID(s string) (jid.JID, error) {
	j, err := jid.Parse(s)
	if err != nil {
		return jid.JID{}, err
	}
	if got := j.String(); got != s {
		local, domain, resource, _ := jid.SplitString(s)
		e := &JIDFormError{JID: s, Part: "resourcepart", Given: resource, Component: j.Resourcepart(), Server: resource}
		switch {
		case local != j.Localpart():
			e.Part, e.Given, e.Component, e.Server = "localpart", local, j.Localpart(), local
		case domain != j.Domainpart():
			e.Part, e.Given, e.Component, e.Server = "domainpart", domain, j.Domainpart(), domain
		}
		return jid.JID{}, e
	}
	return j, nil
}
