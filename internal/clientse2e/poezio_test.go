package clientse2e

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// screenTimeout bounds each wait for the client's screen.
const screenTimeout = 15 * time.Second

// poezioConfig is a poezio.cfg for account at c2s (host, port), trusting
// caFile for the server's certificate, with a password or a client
// certificate (certFile and keyFile).
func poezioConfig(account, host string, port int, caFile, password, certFile, keyFile string) []byte {
	return fmt.Appendf(nil, `[Poezio]
jid = %s
password = %s
certfile = %s
keyfile = %s
custom_host = %s
custom_port = %d
ca_cert_path = %s
auto_reconnect = false
info_win_height = 12
send_poezio_info = false
send_os_info = false
send_time = false
enable_avatars = false
use_bookmarks_method = privatexml
use_remote_bookmarks = false
enable_user_nick = false
whitespace_interval = 0
use_log = false
`, account, password, certFile, keyFile, host, port, caFile)
}

// TestPoezio drives the Debian poezio package, unmodified, through a whole
// certificate life-cycle against a real Prosody with saslcert: a password
// login uploads the README's OpenSSL certificate (/cert_add) and a second
// one with <no-cert-management/>, lists them (/certs) and fetches one
// (/cert_fetch); a second poezio logs in with the first certificate
// (certfile/keyfile); the no-cert-management one cannot manage; /cert_disable
// stops a certificate's logins; /cert_revoke closes the live session that
// logged in with it. A refused upload (the usual one-liner's CA
// certificate) shows poezio's error.
func TestPoezio(t *testing.T) {
	needTools(t, "poezio", "tmux")
	laptopKey, laptopCert := readmeOpenSSLCert(t)
	st := stacktest.Start(t, stacktest.Options{})
	alice := st.Register(t, "alice")
	sb := newSandbox(t)
	ca := sb.write(t, "server-ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: st.S.Cert().Raw}), 0o644)
	host, port := splitHostPort(t, st.S.C2SAddr())
	laptopCert = sb.write(t, "certs/laptop.crt", mustRead(t, laptopCert), 0o644)
	laptopKey = sb.write(t, "certs/laptop.key", mustRead(t, laptopKey), 0o600)
	phone := stacktest.NewCert(t, certtest.Options{CommonName: alice.String(), XMPPAddrs: []string{alice.String()}})
	phoneCert := sb.write(t, "certs/phone.crt", phone.CertPEM(), 0o644)
	caCert := certtest.New(t, certtest.Options{XMPPAddrs: []string{alice.String()}, IsCA: true})
	badCert := sb.write(t, "certs/ca.crt", caCert.CertPEM(), 0o644)

	// 1. Password login; uploads; the list; a fetch.
	pwCfg := sb.write(t, "pw/poezio.cfg", poezioConfig(alice.String(), host, port, ca, st.Password("alice"), "", ""), 0o600)
	pw := startTerminal(t, sb, "pw", "poezio", "-f", pwCfg)
	pw.waitFor(screenTimeout, "Authentication success.", "Your JID is "+alice.String())
	pw.do("/cert_add laptop "+laptopCert, "Certificate added.")
	pw.do("/cert_add phone "+phoneCert+" false", "Certificate added.")
	pw.do("/cert_add ca "+badCert, "Unable to add the certificate.")
	pw.do("/certs", "Certificates:")
	pw.waitFor(screenTimeout, "  laptop", "  phone")
	if strings.Contains(pw.screen(), "  ca") {
		t.Error("/certs lists the refused CA certificate")
	}
	fetched := sb.path("pw/fetched.pem")
	pw.do("/cert_fetch laptop "+fetched, "File stored at "+fetched)
	if got, want := pemDER(t, mustRead(t, fetched)), pemDER(t, mustRead(t, laptopCert)); !bytes.Equal(got, want) {
		t.Error("/cert_fetch stored another certificate than the one uploaded")
	}

	// The phone certificate logs in but may not manage certificates.
	phoneSession, err := st.LoginCert(t.Context(), "alice", phone, "")
	if err != nil {
		t.Fatalf("EXTERNAL login with the no-cert-management certificate: %v", err)
	}
	defer phoneSession.Close()
	var se stanza.Error
	if err := xep0257.DisableCert(t.Context(), phoneSession.Session, jid.JID{}, "laptop"); !errors.As(err, &se) {
		t.Fatalf("a <no-cert-management/> session disabled a certificate: %v; want a refusal", err)
	}
	t.Logf("the <no-cert-management/> session's <disable/> is refused: %s", se.Condition)

	// 2. Certificate login (certfile/keyfile, no password).
	certCfg := sb.write(t, "cert/poezio.cfg", poezioConfig(alice.String(), host, port, ca, "", laptopCert, laptopKey), 0o600)
	cert := startTerminal(t, sb, "cert", "poezio", "-f", certCfg)
	cert.waitFor(screenTimeout, "Authentication success.", "Your JID is "+alice.String())

	// 3. /cert_disable: no new logins, the live session stays.
	pw.do("/cert_disable phone", "Certificate disabled.")
	if c, err := st.LoginCert(t.Context(), "alice", phone, ""); err == nil {
		c.Close()
		t.Fatal("a disabled certificate still logs in")
	}
	if _, err := xep0257.Fetch(t.Context(), phoneSession.Session, jid.JID{}); err != nil {
		t.Errorf("the disabled certificate's live session: %v; want it to stay", err)
	}

	// 4. /cert_revoke: the live poezio session of that certificate is closed.
	pw.do("/cert_revoke laptop", "Certificate revoked.")
	s := cert.waitFor(screenTimeout, "Disconnected from server")
	t.Logf("the revoked certificate's poezio:\n%s", infoLines(s, 6))
	pw.do("/certs", "No certificates found")
	t.Logf("the password session's poezio:\n%s", infoLines(pw.screen(), 20))
}

// mustRead returns the contents of file.
func mustRead(tb testing.TB, file string) []byte {
	tb.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pemDER returns the DER of the first PEM block in b.
func pemDER(tb testing.TB, b []byte) []byte {
	tb.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		tb.Fatalf("no PEM block in %q", b)
	}
	return blk.Bytes
}

// infoLine matches a line of poezio's information window: "12:34:56 Info> text".
var infoLine = regexp.MustCompile(`\d\d:\d\d:\d\d (\w+)> (.*)`)

// infoLines returns the last n lines of poezio's information window on
// screen, as "Kind: text".
func infoLines(screen string, n int) string {
	var out []string
	for _, l := range strings.Split(screen, "\n") {
		if m := infoLine.FindStringSubmatch(l); m != nil {
			out = append(out, m[1]+": "+strings.TrimSpace(m[2]))
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}
