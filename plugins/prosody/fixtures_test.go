package prosody_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"testing"
	"time"

	"mellium.im/xmlstream"

	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/pluginproto"
)

// protoFixture reads testdata/pluginproto/name without its leading comment:
// the same files pluginproto's tests decode and compare.
func protoFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(prosodytest.RepoRoot(), "testdata", "pluginproto", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(regexp.MustCompile(`(?s)<!--.*?-->`).ReplaceAll(b, nil))
}

// exchange sends an IQ of type typ from the component to the server domain
// whose payload is the raw XML payload, and returns the reply's type and its
// first child element as XML (nil if it has none).
func (fc *fakeComponent) exchange(t testing.TB, typ string, payload []byte) (string, []byte) {
	t.Helper()
	raw := "<iq type='" + typ + "' id='fx' from='" + fc.s.ComponentJID + "' to='" + fc.s.Domain + "'>" + string(payload) + "</iq>"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := fc.sess.SendIQ(ctx, xml.NewDecoder(bytes.NewReader([]byte(raw))))
	if err != nil {
		t.Fatalf("component IQ: %v", err)
	}
	defer resp.Close()
	start, err := resp.Token()
	if err != nil {
		t.Fatalf("reply: %v", err)
	}
	var replyType string
	for _, a := range start.(xml.StartElement).Attr {
		if a.Name.Local == "type" {
			replyType = a.Value
		}
	}
	inner := xmlstream.Inner(resp)
	for {
		tok, err := inner.Token()
		if errors.Is(err, io.EOF) {
			return replyType, nil
		}
		if err != nil {
			t.Fatalf("reply: %v", err)
		}
		if s, ok := tok.(xml.StartElement); ok {
			var b bytes.Buffer
			e := xml.NewEncoder(&b)
			if _, err := xmlstream.Copy(e, xmlstream.MultiReader(xmlstream.Token(s), xmlstream.InnerElement(inner))); err != nil {
				t.Fatalf("reply: %v", err)
			}
			if err := e.Flush(); err != nil {
				t.Fatal(err)
			}
			return replyType, b.Bytes()
		}
	}
}

// TestProtocolFixtures: the messages in testdata/pluginproto that the
// component sends to the plugin, sent as they are in the files, get from a
// real Prosody the answers in the files of the answers (decoded with
// pluginproto, strictly, and compared). The server has the account
// alice@example.org and no bob; no session uses the fixtures' certificate.
func TestProtocolFixtures(t *testing.T) {
	s := startServer(t)
	fc := startComponent(t, s)
	tests := []struct {
		name    string
		typ     string
		request string
		answer  string // "": an empty result
		into    any    // the type of the answer
	}{
		{"sessions query", "get", "sessions-query.xml", "", &pluginproto.SessionList{}},
		{"changed", "set", "changed.xml", "", nil},
		{"revoked", "set", "revoked.xml", "revoked-result.xml", &pluginproto.Closed{}},
		{"disabled", "set", "disabled.xml", "disabled-result.xml", &pluginproto.Closed{}},
		{"accounts", "get", "accounts-query.xml", "accounts-result.xml", &pluginproto.Accounts{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			typ, got := fc.exchange(t, tc.typ, protoFixture(t, tc.request))
			if typ != "result" {
				t.Fatalf("reply of type %q, payload %s", typ, got)
			}
			if tc.into == nil {
				if got != nil {
					t.Fatalf("want an empty result, got %s", got)
				}
				return
			}
			if tc.answer == "" {
				// The session list: no certificate session, so an empty
				// list; it must decode.
				if got == nil {
					t.Fatal("no payload")
				}
				if err := xml.Unmarshal(got, tc.into); err != nil {
					t.Fatalf("%s: %v", got, err)
				}
				if l := tc.into.(*pluginproto.SessionList); len(l.Sessions) != 0 {
					t.Fatalf("sessions: %v", l.Sessions)
				}
				return
			}
			if err := xml.Unmarshal(got, tc.into); err != nil {
				t.Fatalf("the plugin's answer %s does not decode: %v", got, err)
			}
			want := reflect.New(reflect.TypeOf(tc.into).Elem()).Interface()
			if err := xml.Unmarshal(protoFixture(t, tc.answer), want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(tc.into, want) {
				t.Fatalf("the plugin answered %s, want (%s) %s", got, tc.answer, protoFixture(t, tc.answer))
			}
		})
	}
}
