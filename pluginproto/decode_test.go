package pluginproto_test

import (
	"encoding/xml"
	"errors"
	"reflect"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
)

const ns = ` xmlns='` + pluginproto.NS + `'`

// TestDecodeRefusals: strict decoding refuses malformed elements with
// modify/bad-request and a text that says what is wrong.
func TestDecodeRefusals(t *testing.T) {
	big := strings.Repeat("QUFB", pluginproto.MaxLookupCert/4+1)
	manyAccounts := strings.Repeat(`<account jid='a@example.org'/>`, pluginproto.MaxAccounts+1)
	tests := []struct {
		name string
		into any
		xml  string
		text string
	}{
		{"lookup/wrong-namespace", &pluginproto.Lookup{}, `<lookup xmlns='urn:other'/>`, "expected <lookup xmlns='" + pluginproto.NS + "'/>, got <lookup xmlns='urn:other'/>"},
		{"lookup/nothing", &pluginproto.Lookup{}, `<lookup` + ns + ` authzid='a@example.org'/>`, "<lookup/> has no <x509cert/>"},
		{"lookup/two-certs", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert>QUFB</x509cert><x509cert>QUFB</x509cert></lookup>`, "<lookup/> has more than one <x509cert/>"},
		{"lookup/bad-base64", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert>!!!</x509cert></lookup>`, "<x509cert/> is not valid base64"},
		{"lookup/empty-cert", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert> </x509cert></lookup>`, "<x509cert/> is empty"},
		{"lookup/too-large", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert>` + big + `</x509cert></lookup>`, "<x509cert/> is too large"},
		{"lookup/unknown-child", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert>QUFB</x509cert><extra/></lookup>`, "<lookup/> has an unexpected child <extra/>"},
		{"lookup/child-in-cert", &pluginproto.Lookup{}, `<lookup` + ns + `><x509cert>QU<b/>FB</x509cert></lookup>`, "<x509cert/> has an unexpected child <b/>"},
		{"lookup/text", &pluginproto.Lookup{}, `<lookup` + ns + ` fingerprint='x'>hello</lookup>`, "<lookup/> has unexpected text"},
		{"lookup/authzid-twice", &pluginproto.Lookup{}, `<lookup` + ns + ` authzid='a' authzid='b'><x509cert>QUFB</x509cert></lookup>`, "authzid is given twice in <lookup/>"},
		{"lookup-result/no-jid", &pluginproto.LookupResult{}, `<lookup` + ns + ` fingerprint='f' no-cert-management='false'/>`, "<lookup/> has no jid"},
		{"lookup-result/no-fingerprint", &pluginproto.LookupResult{}, `<lookup` + ns + ` jid='a@b' no-cert-management='false'/>`, "<lookup/> has no fingerprint"},
		{"lookup-result/bad-ncm", &pluginproto.LookupResult{}, `<lookup` + ns + ` jid='a@b' fingerprint='f' no-cert-management='yes'/>`, `no-cert-management of <lookup/> must be true or false, not "yes"`},
		{"lookup-result/bad-max-age", &pluginproto.LookupResult{}, `<lookup` + ns + ` jid='a@b' fingerprint='f' no-cert-management='true' max-age='-1'/>`, `max-age of <lookup/> must be a non-negative integer, not "-1"`},
		{"lookup-error/no-condition", &pluginproto.LookupError{}, `<error type='auth'/>`, "<error/> has no condition"},
		{"lookup-error/no-type", &pluginproto.LookupError{}, `<error><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error>`, "<error/> has no type"},
		{"lookup-error/two-sasl", &pluginproto.LookupError{}, `<error type='auth'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><a xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><b xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></error>`, "<error/> has more than one SASL condition"},
		{"session/bad-event", &pluginproto.Session{}, `<session` + ns + ` event='opened' jid='a@b/c'/>`, "event must be bound or closed"},
		{"session/child", &pluginproto.Session{}, `<session` + ns + ` event='bound'><x/></session>`, "<session/> has an unexpected child <x/>"},
		{"notices/no-event", &pluginproto.Notices{}, `<notices` + ns + `><session jid='a@b/c'/></notices>`, "event must be bound or closed"},
		{"notices/other-child", &pluginproto.Notices{}, `<notices` + ns + `><lookup/></notices>`, "<notices/> has an unexpected child <lookup/>"},
		{"sessions-query/bad-ttl", &pluginproto.SessionsQuery{}, `<sessions` + ns + ` cache-ttl='soon'/>`, `cache-ttl of <sessions/> must be a non-negative integer, not "soon"`},
		{"sessions-query/child", &pluginproto.SessionsQuery{}, `<sessions` + ns + `><session/></sessions>`, "<sessions/> has an unexpected child <session/>"},
		{"session-list/other-child", &pluginproto.SessionList{}, `<sessions` + ns + `><account jid='a@b'/></sessions>`, "<sessions/> has an unexpected child <account/>"},
		{"revoked/no-fingerprint", &pluginproto.Revoked{}, `<revoked` + ns + ` jid='a@b'/>`, "<revoked/> has no fingerprint"},
		{"disabled/no-jid", &pluginproto.Disabled{}, `<disabled` + ns + ` fingerprint='f'/>`, "<disabled/> has no jid"},
		{"changed/no-jid", &pluginproto.Changed{}, `<changed` + ns + `/>`, "<changed/> has no jid"},
		{"changed/jid-twice", &pluginproto.Changed{}, `<changed` + ns + ` jid='a@b' jid='c@b'/>`, "jid is given twice in <changed/>"},
		{"closed/not-a-number", &pluginproto.Closed{}, `<revoked` + ns + ` closed='many'/>`, `closed of <revoked/> must be a non-negative integer, not "many"`},
		{"closed/missing", &pluginproto.Closed{}, `<disabled` + ns + `/>`, "<disabled/> has no closed"},
		{"closed/other-element", &pluginproto.Closed{}, `<changed` + ns + ` closed='1'/>`, "expected <revoked xmlns='" + pluginproto.NS + "'/>, got <changed xmlns='" + pluginproto.NS + "'/>"},
		{"account-deleted/no-jid", &pluginproto.AccountDeleted{}, `<account-deleted` + ns + `/>`, "<account-deleted/> has no jid"},
		{"account-deleted/jid-twice", &pluginproto.AccountDeleted{}, `<account-deleted` + ns + ` jid='a@b' jid='a@b'/>`, "jid is given twice in <account-deleted/>"},
		{"account-deleted-result/no-count", &pluginproto.AccountDeletedResult{}, `<account-deleted` + ns + `/>`, "<account-deleted/> has no revoked"},
		{"account-created/child", &pluginproto.AccountCreated{}, `<account-created` + ns + ` jid='a@b'><x/></account-created>`, "<account-created/> has an unexpected child <x/>"},
		{"account-created-result/bad", &pluginproto.AccountCreatedResult{}, `<account-created` + ns + ` cleared='1'/>`, `cleared of <account-created/> must be true or false, not "1"`},
		{"accounts/bad-exists", &pluginproto.Accounts{}, `<accounts` + ns + `><account jid='a@b' exists='maybe'/></accounts>`, `exists of <account/> must be true, false or unknown, not "maybe"`},
		{"accounts/no-jid", &pluginproto.Accounts{}, `<accounts` + ns + `><account exists='true'/></accounts>`, "<account/> has no jid"},
		{"accounts/too-many", &pluginproto.Accounts{}, `<accounts` + ns + `>` + manyAccounts + `</accounts>`, "<accounts/> has more than 1000 <account/>"},
		{"stamp/no-mac", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='other' manage='true'/>`, "<auth/> has no mac"},
		{"stamp/bad-method", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='password' manage='true' mac='00'/>`, `method of <auth/> must be certificate or other, not "password"`},
		{"stamp/certificate-without-fingerprint", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='certificate' manage='true' mac='00'/>`, "<auth method='certificate'/> has no fingerprint"},
		{"stamp/other-with-fingerprint", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='other' fingerprint='f' manage='true' mac='00'/>`, "<auth method='other'/> has a fingerprint"},
		{"stamp/bad-manage", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='other' manage='TRUE' mac='00'/>`, `manage of <auth/> must be true or false, not "TRUE"`},
		{"stamp/ends-early", &pluginproto.Stamp{}, `<auth` + ns + ` jid='a@b/c' id='1' method='other' manage='true' mac='00'>`, "<auth/> ends early or is not well-formed XML"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := xml.Unmarshal([]byte(tc.xml), tc.into)
			var se stanza.Error
			if !errors.As(err, &se) {
				t.Fatalf("got %v, want a stanza.Error", err)
			}
			if se.Type != stanza.Modify || se.Condition != stanza.BadRequest || se.Text[""] != tc.text {
				t.Fatalf("got %s/%s %q, want modify/bad-request %q", se.Type, se.Condition, se.Text[""], tc.text)
			}
		})
	}
}

// TestRoundTrip: values that no fixture shows encode and decode back to
// themselves.
func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		v    any
	}{
		{"lookup/no-authzid", pluginproto.Lookup{Cert: []byte{0x30, 0x82, 0x01}}},
		{"lookup/escaped-authzid", pluginproto.Lookup{Authzid: `a'b"<c>&@example.org`, Fingerprint: "sha256:00"}},
		{"lookup-result/minimal", pluginproto.LookupResult{JID: "a@example.org", Fingerprint: "sha256:00", NoCertManagement: true}},
		{"lookup-error/no-text", pluginproto.Refused(pluginproto.SASLAccountDisabled, "")},
		{"sessions-query/no-cache", pluginproto.SessionsQuery{Lookup: pluginproto.LookupByFingerprint}},
		{"sessions-query/empty", pluginproto.SessionsQuery{}},
		{"session-list/empty", pluginproto.SessionList{}},
		{"closed/revoked", pluginproto.Closed{Notice: "revoked", Count: 3}},
		{"accounts/unknown", pluginproto.Accounts{Accounts: []pluginproto.Account{{JID: "x@example.org", Exists: pluginproto.ExistsUnknown}}}},
		{"account-created-result/false", pluginproto.AccountCreatedResult{}},
		{"stamp/other", pluginproto.Stamp{JID: "a@example.org/r", ID: "", Method: pluginproto.MethodOther, Manage: true}.Sign([]byte("s"))},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b, err := xml.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			got := reflect.New(reflect.TypeOf(tc.v))
			if err := xml.Unmarshal(b, got.Interface()); err != nil {
				t.Fatalf("decoding %s: %v", b, err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tc.v) {
				t.Fatalf("%s decoded to\n%#v\nwant\n%#v", b, got.Elem().Interface(), tc.v)
			}
		})
	}
}
