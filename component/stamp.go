package component

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

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
// keyed with the component secret, of stampMessage: only the server (which
// has the secret, and strips clients' stamps) can make one that verifies, so
// a client of a host that does not run the plugin cannot forge one, and the
// stamp is bound to one sender and request id.
const (
	stampLocal = "auth"
	// maxStamps bounds the elements read after a payload while looking for
	// the stamp.
	maxStamps = 8
)

// The methods a stamp may name.
const (
	methodCertificate = "certificate" // SASL EXTERNAL through saslcert
	methodOther       = "other"       // any other login (password, token)
)

// stampMessage is what the MAC covers: each field length-prefixed, so that
// no two different stamps have the same message.
func stampMessage(jidStr, id, method, fingerprint, manage string) []byte {
	var b strings.Builder
	b.WriteString("urn:x-saslcert:plugin:0 auth\n")
	for _, f := range []string{jidStr, id, method, fingerprint, manage} {
		b.WriteString(strconv.Itoa(len(f)))
		b.WriteByte(':')
		b.WriteString(f)
		b.WriteByte(',')
	}
	return []byte(b.String())
}

// stampMAC is the hex MAC of a stamp's fields under secret.
func stampMAC(secret []byte, jidStr, id, method, fingerprint, manage string) string {
	m := hmac.New(sha256.New, secret)
	m.Write(stampMessage(jidStr, id, method, fingerprint, manage))
	return hex.EncodeToString(m.Sum(nil))
}

// stamp is the attributes of one <auth/> element.
type stamp struct {
	jid, id, method, fingerprint, manage, mac string
}

func stampOf(start xml.StartElement) stamp {
	var s stamp
	for _, a := range start.Attr {
		if a.Name.Space != "" {
			continue
		}
		switch a.Name.Local {
		case "jid":
			s.jid = a.Value
		case "id":
			s.id = a.Value
		case "method":
			s.method = a.Value
		case "fingerprint":
			s.fingerprint = a.Value
		case "manage":
			s.manage = a.Value
		case "mac":
			s.mac = a.Value
		}
	}
	return s
}

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
	var stamps []stamp
	for n := 0; ; n++ {
		start, err := firstChild(r)
		if err != nil {
			break // the end of the IQ (or of the input)
		}
		if n >= maxStamps {
			return xep0257.Auth{}, fmt.Errorf("%w: more than %d elements after the payload", errStampMalformed, maxStamps)
		}
		if start.Name.Space == NSPlugin && start.Name.Local == stampLocal {
			stamps = append(stamps, stampOf(start))
		}
		if err := xmlstream.Skip(r); err != nil {
			return xep0257.Auth{}, fmt.Errorf("%w: %v", errStampMalformed, err)
		}
	}
	switch len(stamps) {
	case 0:
		return xep0257.Auth{}, errNoStamp
	case 1:
	default:
		return xep0257.Auth{}, errManyStamps
	}
	return c.verifyStamp(stamps[0], from, id)
}

// verifyStamp checks s against the secret and the request (from, id).
func (c *Component) verifyStamp(s stamp, from jid.JID, id string) (xep0257.Auth, error) {
	want := stampMAC(c.cfg.Secret, s.jid, s.id, s.method, s.fingerprint, s.manage)
	if !hmac.Equal([]byte(strings.ToLower(s.mac)), []byte(want)) {
		return xep0257.Auth{}, errStampMAC
	}
	j, err := jid.Parse(s.jid)
	if err != nil || !j.Equal(from) || s.id != id {
		return xep0257.Auth{}, errStampBinding
	}
	auth := xep0257.Auth{Vouched: true}
	switch s.manage {
	case "true":
		auth.Manage = true
	case "false":
	default:
		return xep0257.Auth{}, fmt.Errorf("%w: manage=%q", errStampMalformed, s.manage)
	}
	switch s.method {
	case methodCertificate:
		fp, err := storage.ParseFingerprint(s.fingerprint)
		if err != nil {
			return xep0257.Auth{}, fmt.Errorf("%w: fingerprint: %v", errStampMalformed, err)
		}
		auth.Certificate, auth.Fingerprint = true, fp
	case methodOther:
		if s.fingerprint != "" {
			return xep0257.Auth{}, fmt.Errorf("%w: a fingerprint with method other", errStampMalformed)
		}
	default:
		return xep0257.Auth{}, fmt.Errorf("%w: method=%q", errStampMalformed, s.method)
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
