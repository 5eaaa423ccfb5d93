package sasl

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"

	"mellium.im/xmpp/jid"
)

// OIDEmailAddress is the PKCS#9 emailAddress attribute some certificates
// carry in their subject (RFC 2985 §5.2.1).
var OIDEmailAddress = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 9, 1}

// CheckEmails applies the email rule to a certificate's (or a request's)
// rfc822Name subjectAltNames and subject emailAddress attributes: each one
// must be exactly account's bare JID in its canonical form (account.Bare()
// as ParseJID prints it). Clients such as Conversations take the account
// from the email address, not from the xmppAddr, so an email naming anyone
// else would make such a client log in as someone the server did not check.
// It returns a *RefusalError (reason wrong-email) naming the first email that
// breaks the rule, or nil (also when there is none).
func CheckEmails(emails []string, subject pkix.Name, account jid.JID) *RefusalError {
	want := account.Bare().String()
	check := func(where, got string) *RefusalError {
		if got == want {
			return nil
		}
		return refuse(ReasonWrongEmail, "the email address %s (%s) is not you (%s); an email address in a client certificate must be exactly your bare JID %s, or be left out",
			quote(got), where, displayJID(account.Bare()), want)
	}
	for _, e := range emails {
		if r := check("an rfc822Name subjectAltName", e); r != nil {
			return r
		}
	}
	for _, atv := range subject.Names {
		if !atv.Type.Equal(OIDEmailAddress) {
			continue
		}
		s, ok := atv.Value.(string)
		if !ok {
			s = fmt.Sprint(atv.Value)
		}
		if r := check("the subject's emailAddress", s); r != nil {
			return r
		}
	}
	return nil
}
