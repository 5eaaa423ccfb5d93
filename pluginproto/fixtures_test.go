package pluginproto_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/pluginproto"
)

// The fixtures' fingerprint and certificate: "not a real certificate".
const (
	fixtureFP  = "sha256:89eee6b6c7541508d753a43e2aaf9267e81f1c8e4302146769742c93d293077c"
	fixtureDER = "not a real certificate"
	// fixtureSecret keys the MAC of stamp.xml.
	fixtureSecret = "fixture-secret"
)

// readFixture reads testdata/pluginproto/name.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "pluginproto", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// canon is XML in a form that compares equal whatever the quoting,
// attribute order, namespace declarations and white space between
// elements.
func canon(t testing.TB, b []byte) string {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(b))
	var out strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			return out.String()
		}
		if err != nil {
			t.Fatalf("canon: %v in %s", err, b)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			var attrs []string
			for _, a := range tok.Attr {
				if a.Name.Space != "xmlns" && a.Name.Local != "xmlns" {
					attrs = append(attrs, a.Name.Local+"="+a.Value)
				}
			}
			slices.Sort(attrs)
			fmt.Fprintf(&out, "<{%s}%s %s>", tok.Name.Space, tok.Name.Local, strings.Join(attrs, " "))
		case xml.EndElement:
			fmt.Fprintf(&out, "</%s>", tok.Name.Local)
		case xml.CharData:
			if s := strings.TrimSpace(string(tok)); s != "" {
				out.WriteString(s)
			}
		}
	}
}

// fixtureCases pairs every fixture with the value it holds.
var fixtureCases = []struct {
	file string
	want any // a value; decoding fills a new one of its type
}{
	{"lookup-by-cert.xml", pluginproto.Lookup{Authzid: "alice@example.org", Cert: []byte(fixtureDER)}},
	{"lookup-by-fingerprint.xml", pluginproto.Lookup{Fingerprint: fixtureFP}},
	{"lookup-result.xml", pluginproto.LookupResult{JID: "alice@example.org", Resource: "tablet", Fingerprint: fixtureFP, MaxAge: 60}},
	{"lookup-refused.xml", pluginproto.Refused(pluginproto.SASLInvalidAuthzid, "the authorization identity does not match the certificate")},
	{"lookup-undecided.xml", pluginproto.Undecided(stanza.InternalServerError)},
	{"notices.xml", pluginproto.Notices{Sessions: []pluginproto.Session{
		{Event: pluginproto.EventBound, JID: "alice@example.org/tablet", Fingerprint: fixtureFP},
		{Event: pluginproto.EventClosed, JID: "alice@example.org/phone", Fingerprint: fixtureFP},
	}}},
	{"session-notice.xml", pluginproto.Session{Event: pluginproto.EventBound, JID: "alice@example.org/tablet", Fingerprint: fixtureFP}},
	{"sessions-query.xml", pluginproto.SessionsQuery{Lookup: pluginproto.LookupByFingerprint, CacheTTL: 60}},
	{"sessions-result.xml", pluginproto.SessionList{Sessions: []pluginproto.Session{{JID: "alice@example.org/tablet", Fingerprint: fixtureFP}}}},
	{"revoked.xml", pluginproto.Revoked{JID: "alice@example.org", Fingerprint: fixtureFP}},
	{"revoked-result.xml", pluginproto.Closed{Notice: "revoked", Count: 0}},
	{"disabled.xml", pluginproto.Disabled{JID: "alice@example.org/phone", Fingerprint: fixtureFP}},
	{"disabled-result.xml", pluginproto.Closed{Notice: "disabled", Count: 0}},
	{"changed.xml", pluginproto.Changed{JID: "alice@example.org"}},
	{"account-deleted.xml", pluginproto.AccountDeleted{JID: "alice@example.org"}},
	{"account-deleted-result.xml", pluginproto.AccountDeletedResult{Revoked: 2}},
	{"account-created.xml", pluginproto.AccountCreated{JID: "alice@example.org"}},
	{"account-created-result.xml", pluginproto.AccountCreatedResult{Cleared: true}},
	{"accounts-query.xml", pluginproto.Accounts{Accounts: []pluginproto.Account{{JID: "alice@example.org"}, {JID: "bob@example.org"}}}},
	{"accounts-result.xml", pluginproto.Accounts{Accounts: []pluginproto.Account{
		{JID: "alice@example.org", Exists: pluginproto.ExistsTrue}, {JID: "bob@example.org", Exists: pluginproto.ExistsFalse},
	}}},
	{"stamp.xml", pluginproto.Stamp{JID: "alice@example.org/kiosk", ID: "req-1", Method: pluginproto.MethodCertificate,
		Fingerprint: fixtureFP}.Sign([]byte(fixtureSecret))},
}

// TestFixtures: every fixture decodes to the value it documents, and the
// value encodes to the fixture (up to quoting, attribute order and white
// space).
func TestFixtures(t *testing.T) {
	seen := map[string]bool{}
	for _, tc := range fixtureCases {
		t.Run(strings.TrimSuffix(tc.file, ".xml"), func(t *testing.T) {
			seen[tc.file] = true
			raw := readFixture(t, tc.file)
			got := reflect.New(reflect.TypeOf(tc.want))
			if err := xml.Unmarshal(raw, got.Interface()); err != nil {
				t.Fatalf("decoding: %v", err)
			}
			if !reflect.DeepEqual(got.Elem().Interface(), tc.want) {
				t.Fatalf("decoded\n%#v\nwant\n%#v", got.Elem().Interface(), tc.want)
			}
			enc, err := xml.Marshal(tc.want)
			if err != nil {
				t.Fatalf("encoding: %v", err)
			}
			if g, w := canon(t, enc), canon(t, raw); g != w {
				t.Errorf("encoded\n%s\nwant (the fixture)\n%s", enc, raw)
			}
		})
	}
	files, err := filepath.Glob(filepath.Join("..", "testdata", "pluginproto", "*.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !seen[filepath.Base(f)] {
			t.Errorf("%s has no case in fixtureCases", f)
		}
	}
}

// TestStampFixtureMAC: the MAC of stamp.xml verifies under its secret, and
// not under another or with a field changed.
func TestStampFixtureMAC(t *testing.T) {
	var s pluginproto.Stamp
	if err := xml.Unmarshal(readFixture(t, "stamp.xml"), &s); err != nil {
		t.Fatal(err)
	}
	if !s.Verify([]byte(fixtureSecret)) {
		t.Fatal("the fixture's MAC does not verify")
	}
	tests := []struct {
		name   string
		secret string
		change func(*pluginproto.Stamp)
	}{
		{"other-secret", "another secret", func(*pluginproto.Stamp) {}},
		{"other-jid", fixtureSecret, func(s *pluginproto.Stamp) { s.JID = "alice@example.org/other" }},
		{"other-id", fixtureSecret, func(s *pluginproto.Stamp) { s.ID = "req-2" }},
		{"manage", fixtureSecret, func(s *pluginproto.Stamp) { s.Manage = true }},
		{"method", fixtureSecret, func(s *pluginproto.Stamp) { s.Method, s.Fingerprint = pluginproto.MethodOther, "" }},
		{"upper-case-mac", fixtureSecret, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := s
			if tc.change == nil {
				v.MAC = strings.ToUpper(v.MAC)
				if !v.Verify([]byte(tc.secret)) {
					t.Fatal("an upper-case MAC does not verify")
				}
				return
			}
			tc.change(&v)
			if v.Verify([]byte(tc.secret)) {
				t.Fatal("verifies")
			}
		})
	}
}

// TestStampMessage pins the byte format of docs/PLUGIN-PROTOCOL.md.
func TestStampMessage(t *testing.T) {
	got := string(pluginproto.StampMessage("a@b/c", "i", "other", "", "true"))
	want := "urn:x-saslcert:plugin:0 auth\n5:a@b/c,1:i,5:other,0:,4:true,"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}
