package pluginproto

import (
	"encoding/xml"
	"strconv"

	"mellium.im/xmlstream"
)

// AccountDeleted says that the server deleted an account (an IQ set from
// the plugin); the component revokes its certificates and writes its
// tombstone.
//
//	<account-deleted xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org'/>
type AccountDeleted struct {
	JID string // bare account JID
}

// TokenReader implements xmlstream.Marshaler.
func (a AccountDeleted) TokenReader() xml.TokenReader {
	return emptyElement("account-deleted", attr{name: "jid", value: a.JID, always: true})
}

// WriteXML implements xmlstream.WriterTo.
func (a AccountDeleted) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a AccountDeleted) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid is required (given once);
// no children.
func (a *AccountDeleted) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "account-deleted", "jid")
	if err != nil {
		return err
	}
	*a = AccountDeleted{JID: m["jid"]}
	return nil
}

// AccountDeletedResult is the component's answer to AccountDeleted: how
// many certificates it revoked.
//
//	<account-deleted xmlns='urn:x-saslcert:plugin:0' revoked='2'/>
type AccountDeletedResult struct {
	Revoked int
}

// TokenReader implements xmlstream.Marshaler.
func (a AccountDeletedResult) TokenReader() xml.TokenReader {
	return emptyElement("account-deleted", attr{name: "revoked", value: strconv.Itoa(a.Revoked)})
}

// WriteXML implements xmlstream.WriterTo.
func (a AccountDeletedResult) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a AccountDeletedResult) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: revoked is a non-negative
// integer; no children.
func (a *AccountDeletedResult) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "account-deleted")
	if err != nil {
		return err
	}
	n, err := m.count("account-deleted", "revoked")
	if err != nil {
		return err
	}
	*a = AccountDeletedResult{Revoked: n}
	return nil
}

// AccountCreated says that the server registered an account (an IQ set from
// the plugin); the component lifts its tombstone.
//
//	<account-created xmlns='urn:x-saslcert:plugin:0' jid='alice@example.org'/>
type AccountCreated struct {
	JID string // bare account JID
}

// TokenReader implements xmlstream.Marshaler.
func (a AccountCreated) TokenReader() xml.TokenReader {
	return emptyElement("account-created", attr{name: "jid", value: a.JID, always: true})
}

// WriteXML implements xmlstream.WriterTo.
func (a AccountCreated) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a AccountCreated) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: jid is required (given once);
// no children.
func (a *AccountCreated) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "account-created", "jid")
	if err != nil {
		return err
	}
	*a = AccountCreated{JID: m["jid"]}
	return nil
}

// AccountCreatedResult is the component's answer to AccountCreated: whether
// there was a tombstone to lift.
//
//	<account-created xmlns='urn:x-saslcert:plugin:0' cleared='true'/>
type AccountCreatedResult struct {
	Cleared bool
}

// TokenReader implements xmlstream.Marshaler.
func (a AccountCreatedResult) TokenReader() xml.TokenReader {
	return emptyElement("account-created", attr{name: "cleared", value: strconv.FormatBool(a.Cleared)})
}

// WriteXML implements xmlstream.WriterTo.
func (a AccountCreatedResult) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a AccountCreatedResult) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: cleared is true or false; no
// children.
func (a *AccountCreatedResult) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	m, err := decodeEmpty(d, start, "account-created")
	if err != nil {
		return err
	}
	c, err := m.boolean("account-created", "cleared")
	if err != nil {
		return err
	}
	*a = AccountCreatedResult{Cleared: c}
	return nil
}

// Exists is the plugin's answer about one account in a reconciliation.
type Exists string

// The answers; the query's accounts have none.
const (
	ExistsTrue    Exists = "true"
	ExistsFalse   Exists = "false"
	ExistsUnknown Exists = "unknown"
)

// Account is one account of an Accounts query (no Exists) or answer.
type Account struct {
	JID    string
	Exists Exists
}

// Accounts is the component's reconciliation query (an IQ get to a server
// domain) and the plugin's answer:
//
//	<accounts xmlns='urn:x-saslcert:plugin:0'>
//	  <account jid='alice@example.org'/>                 <!-- query -->
//	  <account jid='bob@example.org' exists='false'/>    <!-- answer -->
//	</accounts>
type Accounts struct {
	Accounts []Account
}

// TokenReader implements xmlstream.Marshaler.
func (a Accounts) TokenReader() xml.TokenReader {
	inner := make([]xml.TokenReader, 0, len(a.Accounts))
	for _, ac := range a.Accounts {
		inner = append(inner, childElement("account",
			attr{name: "jid", value: ac.JID, always: true}, attr{name: "exists", value: string(ac.Exists)}))
	}
	return element("accounts", xmlstream.MultiReader(inner...))
}

// WriteXML implements xmlstream.WriterTo.
func (a Accounts) WriteXML(w xmlstream.TokenWriter) (int, error) {
	return xmlstream.Copy(w, a.TokenReader())
}

// MarshalXML implements xml.Marshaler.
func (a Accounts) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return marshal(e, a.TokenReader())
}

// UnmarshalXML implements xml.Unmarshaler: at most MaxAccounts <account/>
// children, each with a jid and, if present, exists true, false or
// unknown; nothing else.
func (a *Accounts) UnmarshalXML(d *xml.Decoder, start xml.StartElement) error {
	if err := checkName(start, "accounts"); err != nil {
		return err
	}
	var list []Account
	err := children(d, "accounts", func(c xml.StartElement) error {
		if len(list) >= MaxAccounts {
			return badRequest("<accounts/> has more than " + strconv.Itoa(MaxAccounts) + " <account/>")
		}
		m, err := decodeEmpty(d, c, "account", "jid")
		if err != nil {
			return err
		}
		ac := Account{JID: m["jid"]}
		if e, ok := m["exists"]; ok {
			ac.Exists = Exists(e)
			if ac.Exists != ExistsTrue && ac.Exists != ExistsFalse && ac.Exists != ExistsUnknown {
				return badRequest("exists of <account/> must be true, false or unknown, not " + strconv.Quote(e))
			}
		}
		list = append(list, ac)
		return nil
	})
	if err != nil {
		return err
	}
	*a = Accounts{Accounts: list}
	return nil
}
