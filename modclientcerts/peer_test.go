package modclientcerts_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/prosodyconf"
	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/modclientcerts"
	"github.com/saslcert/saslcert/xep0257"
)

// fixtureDir holds a copy of a Prosody data directory whose client_certs
// store the real mod_client_certs wrote in TestPeerWritesWhatWeRead (run it
// with SASLCERT_UPDATE_FIXTURES=1 to write it again). cmd/saslcert's import
// tests read it too.
var fixtureDir = filepath.Join("..", "testdata", "modclientcerts", "data")

// upload is one certificate the peer test uploads through mod_client_certs.
type upload struct {
	user, name string
	opts       certtest.Options
	noMgmt     bool
}

// peerUploads are what the fixture holds: certificates saslcert accepts,
// and ones mod_client_certs accepted that saslcert's upload checks refuse
// (expired, a CA certificate, a name with a control character).
func peerUploads() []upload {
	long := certtest.Now.Add(10 * 365 * 24 * time.Hour)
	nb := certtest.Now.Add(-time.Hour)
	return []upload{
		{"alice", "laptop", certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: nb, NotAfter: long}, false},
		{"alice", "phone", certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: nb, NotAfter: long, KeyType: certtest.Ed25519}, true},
		{"alice", "old", certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: nb.Add(-48 * time.Hour), NotAfter: certtest.Now.Add(-24 * time.Hour)}, false},
		{"alice", "my ca", certtest.Options{XMPPAddrs: []string{"alice@example.org"}, NotBefore: nb, NotAfter: long, IsCA: true}, false},
		{"bob.smith", "Lukas' Telefon \u00fc \"x\"", certtest.Options{XMPPAddrs: []string{"bob.smith@example.org"}, NotBefore: nb, NotAfter: long}, false},
		{"bob.smith", "tab\there", certtest.Options{XMPPAddrs: []string{"bob.smith@example.org/desk"}, NotBefore: nb, NotAfter: long}, false},
	}
}

// TestPeerWritesWhatWeRead runs a real Prosody with Debian's
// mod_client_certs (patched as the benchmark does, PEER.md), uploads
// certificates through it with XEP-0257 and reads the files it wrote.
func TestPeerWritesWhatWeRead(t *testing.T) {
	if _, err := os.Stat(prosodyconf.PeerModule); err != nil {
		if os.Getenv("SASLCERT_REQUIRE_PROSODY") != "" {
			t.Fatalf("mod_client_certs: %v (install prosody-modules)", err)
		}
		t.Skipf("mod_client_certs not installed: %v", err)
	}
	plugins := t.TempDir()
	if err := prosodyconf.PatchPeerModule(prosodyconf.PeerModule, plugins); err != nil {
		t.Fatal(err)
	}
	s := prosodytest.Start(t, prosodytest.Options{
		ExtraGlobal:  "plugin_paths = { " + luaQuote(plugins) + " }",
		ExtraModules: []string{"client_certs"},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ups := peerUploads()
	sessions := map[string]*xmpp.Session{}
	for _, u := range ups {
		if sessions[u.user] != nil {
			continue
		}
		s.Register(t, u.user, "pw-"+u.user)
		sess, err := s.DialClient(ctx, jid.MustParse(u.user+"@"+s.Domain+"/import"),
			xmpp.StartTLS(s.TLSConfig()), xmpp.SASL("", "pw-"+u.user, sasl.Plain), xmpp.BindResource())
		if err != nil {
			t.Fatalf("login %s: %v", u.user, err)
		}
		go func() { _ = sess.Serve(nil) }()
		t.Cleanup(func() { sess.Close(); sess.Conn().Close() })
		sessions[u.user] = sess
	}
	ders := map[string][]byte{}
	for _, u := range ups {
		c := certtest.New(t, u.opts)
		ders[u.user+"/"+u.name] = c.DER
		account := jid.MustParse(u.user + "@" + s.Domain)
		if err := xep0257.AppendCert(ctx, sessions[u.user], account, u.name, c.DER, u.noMgmt); err != nil {
			t.Fatalf("append %s %q through mod_client_certs: %v", u.user, u.name, err)
		}
	}
	data := filepath.Join(s.Dir, "data")
	files, err := modclientcerts.Scan(data, []string{s.Domain})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 2 || files[0].User != "alice" || files[1].User != "bob.smith" {
		t.Fatalf("Scan = %+v, want alice's and bob.smith's files", files)
	}
	got := 0
	for _, f := range files {
		entries, err := modclientcerts.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Err != nil {
				t.Errorf("%s: %v", f.User, e.Err)
				continue
			}
			want := ders[f.User+"/"+e.Name]
			if !bytes.Equal(e.DER, want) {
				t.Errorf("%s %q: DER differs from the uploaded one", f.User, e.Name)
			}
			got++
		}
	}
	if got != len(ups) {
		t.Errorf("read %d certificates, uploaded %d", got, len(ups))
	}
	for _, u := range ups {
		if u.noMgmt {
			es, _ := modclientcerts.ReadFile(filepath.Join(data, "example%2eorg", "client_certs", u.user+".dat"))
			for _, e := range es {
				if e.Name == u.name && !e.NoCertManagement {
					t.Errorf("%q: no_cert_management not read", u.name)
				}
			}
		}
	}
	if os.Getenv("SASLCERT_UPDATE_FIXTURES") != "" {
		writeFixture(t, files)
	}
}

// writeFixture copies the peer's files into fixtureDir.
func writeFixture(t *testing.T, files []modclientcerts.UserFile) {
	if err := os.RemoveAll(fixtureDir); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		dst := filepath.Join(fixtureDir, modclientcerts.PathEncode(f.Host), modclientcerts.Store, filepath.Base(f.Path))
		b, err := os.ReadFile(f.Path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", dst)
	}
}

func luaQuote(s string) string { return "\"" + s + "\"" }
