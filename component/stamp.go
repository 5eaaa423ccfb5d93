package component

import (
	"encoding/xml"
	"errors"
	"fmt"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// The auth stamp (docs/PLUGIN-PROTOCOL.md, "auth stamp"): the server
// plugin puts one after the payload of every IQ set a client session sends
// to the component, and of every XEP-0257 set it (or mod_delegation)
// passes on, after removing any the client put there:
//
//	<auth xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org/kiosk' id='req-1'
//	      method='certificate' fingerprint='sha256:…' manage='false' mac='…'/>
//
// It says how the session that sent the request logged in, as the server
// knows it at that moment: management rights travel with the request, so
// they hold for a session the component has not heard of yet (its session
// notice comes later, and after every reconnect). mac is the HMAC-SHA256,
// keyed with the component secret, of pluginproto.StampMessage: only the server (which
// has the secret, and strips clients' stamps) can make one that verifies, so
// a client of a host that does not run the plugin cannot forge one, and the
// stamp is bound to one sender and request id.
//
// The element and its MAC are pluginproto.Stamp's.

// maxStamps bounds the elements read after a payload while looking for the
// stamp.
const maxStamps = 8

// Reasons why a request carries no usable stamp (only logged).
var (
	errNoStamp        = errors.New("no auth stamp")
	errManyStamps     = errors.New("more than one auth stamp")
	errStampMAC       = errors.New("the auth stamp's MAC does not verify (forged, or another secret)")
	errStampBinding   = errors.New("the auth stamp is for another sender or request")
	errStampMalformed = errors.New("malformed auth stamp")
)

// readAuth reads what follows a request's payload up to the end of its IQ
// (r must be positioned right after the payload's end) and returns what the
// server vouched for about the sender from of the IQ with id id: the zero
// Auth (nothing vouched for) unless exactly one stamp is there and it
// verifies, names from and id, and is well-formed; the error says why not.
func (c *Component) readAuth(r xml.TokenReader, from jid.JID, id string) (xep0257.Auth, error) {
	var stamps []pluginproto.Stamp
	var malformed error
	for n := 0; ; n++ {
		start, err := firstChild(r)
		if err != nil {
			break // the end of the IQ (or of the input)
		}
		if n >= maxStamps {
			return xep0257.Auth{}, fmt.Errorf("%w: more than %d elements after the payload", errStampMalformed, maxStamps)
		}
		if start.Name.Space != NSPlugin || start.Name.Local != "auth" {
			if err := xmlstream.Skip(r); err != nil {
				return xep0257.Auth{}, fmt.Errorf("%w: %v", errStampMalformed, err)
			}
			continue
		}
		var s pluginproto.Stamp
		if err := decodeElement(start, r, &s); err != nil {
			malformed = fmt.Errorf("%w: %v", errStampMalformed, err)
		}
		stamps = append(stamps, s)
	}
	switch {
	case len(stamps) == 0:
		return xep0257.Auth{}, errNoStamp
	case len(stamps) > 1:
		return xep0257.Auth{}, errManyStamps
	case malformed != nil:
		return xep0257.Auth{}, malformed
	}
	return c.verifyStamp(stamps[0], from, id)
}

// verifyStamp checks s against the secret and the request (from, id).
func (c *Component) verifyStamp(s pluginproto.Stamp, from jid.JID, id string) (xep0257.Auth, error) {
	if !s.Verify(c.cfg.Secret) {
		return xep0257.Auth{}, errStampMAC
	}
	j, err := jid.Parse(s.JID)
	if err != nil || !j.Equal(from) || s.ID != id {
		return xep0257.Auth{}, errStampBinding
	}
	auth := xep0257.Auth{Vouched: true, Manage: s.Manage}
	if s.Method == pluginproto.MethodCertificate {
		fp, err := storage.ParseFingerprint(s.Fingerprint)
		if err != nil {
			return xep0257.Auth{}, fmt.Errorf("%w: fingerprint: %v", errStampMalformed, err)
		}
		auth.Certificate, auth.Fingerprint = true, fp
	}
	return auth, nil
}

// requestAuth is readAuth that logs why a request carries no usable stamp.
func (c *Component) requestAuth(r xml.TokenReader, from jid.JID, id string) xep0257.Auth {
	auth, err := c.readAuth(r, from, id)
	switch {
	case err == nil:
	case errors.Is(err, errNoStamp):
		c.log.Debug("request without an auth stamp: it may not manage certificates", "from", from.String())
	default:
		c.log.Warn("refusing an auth stamp: the request may not manage certificates", "from", from.String(), "reason", err.Error())
	}
	return auth
}
