package webfinger

import (
	"errors"
	"net/url"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/sasl"
)

// ParseResource reads a WebFinger resource naming an XMPP account and returns
// its bare JID (normalised by sasl.ParseJID). Accepted: acct:user@domain (RFC
// 7565; the userpart percent-decoded) and xmpp:user@domain (RFC 5122;
// percent-decoded; no //authority, /resource, ?query or #fragment). Errors
// are *httperr.Error: invalid_request (400) for a malformed resource or an
// address that is not a valid bare JID of a user, not_found (404) for a
// well-formed URI of another scheme.
func ParseResource(s string) (jid.JID, error) {
	scheme, rest, ok := strings.Cut(s, ":")
	if !ok || scheme == "" || !validScheme(scheme) {
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "the resource is not a URI; use acct:user@domain")
	}
	var addr string
	switch strings.ToLower(scheme) {
	case "acct":
		// RFC 7565: acctURI = "acct:" userpart "@" host; the userpart may
		// hold a percent-encoded "@", the host never does.
		i := strings.LastIndexByte(rest, '@')
		if i <= 0 || i == len(rest)-1 {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "an acct: resource is acct:user@domain")
		}
		if strings.ContainsAny(rest, "/?#") {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "an acct: resource has no path, query or fragment")
		}
		user, err := url.PathUnescape(rest[:i])
		host, err2 := url.PathUnescape(rest[i+1:])
		if err != nil || err2 != nil {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "the acct: resource has a bad percent-encoding")
		}
		if strings.Contains(host, "@") {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "an acct: resource is acct:user@domain")
		}
		addr = user + "@" + host
	case "xmpp":
		if strings.HasPrefix(rest, "//") {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "an xmpp: resource is xmpp:user@domain, without an authority")
		}
		if strings.ContainsAny(rest, "/?#") {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "an xmpp: resource names a bare JID: no resource, query or fragment")
		}
		a, err := url.PathUnescape(rest)
		if err != nil {
			return jid.JID{}, httperr.New(httperr.InvalidRequest, "the xmpp: resource has a bad percent-encoding")
		}
		addr = a
	default:
		return jid.JID{}, httperr.New(httperr.NotFound, "only acct: and xmpp: resources are served")
	}
	j, err := sasl.ParseJID(addr)
	switch {
	case errors.Is(err, sasl.ErrJIDForms):
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "the address has two forms on XMPP servers (RFC 3920 and RFC 7622 read it differently)")
	case err != nil:
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "the resource does not name a valid XMPP address")
	case j.Localpart() == "" || j.Resourcepart() != "":
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "the resource must name an account: user@domain")
	}
	return j, nil
}

// validScheme reports whether s is an RFC 3986 scheme.
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// uriPart percent-encodes s for the userpart or host of an acct: or xmpp:
// URI: unreserved characters and sub-delims stay, every other byte is
// encoded.
func uriPart(s string) string {
	var b strings.Builder
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', strings.IndexByte("-._~!$&'()*+,;=", c) >= 0:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
		}
	}
	return b.String()
}

// accountURI is the acct: or xmpp: URI (scheme given) of the bare JID j.
func accountURI(scheme string, j jid.JID) string {
	return scheme + ":" + uriPart(j.Localpart()) + "@" + uriPart(j.Domainpart())
}
