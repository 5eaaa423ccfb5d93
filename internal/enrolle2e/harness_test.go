package enrolle2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/storage"
)

// Deadlines: generous, for a loaded 2-core machine; nothing asserts on
// timing.
const (
	stepTimeout  = 30 * time.Second
	eventTimeout = 60 * time.Second
)

// TestMain lets stacktest build the saslcert binary (once, on first use:
// with -short every test skips and nothing is built) and remove it at the
// end.
func TestMain(m *testing.M) { stacktest.Main(m) }

// saslcertCmd runs the saslcert binary with args and returns its combined
// output; a non-zero exit fails t.
func saslcertCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(stacktest.Binary(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("saslcert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stack is a stacktest.Stack without a component (a real Prosody with
// mod_saslcert, saslcert_timeout 15 s, accounts and logins), a data
// directory, and a directory for config files and keys; startServe runs the
// real "saslcert serve" with a TOML config as its component.
type stack struct {
	*stacktest.Stack
	Dir     string // for config files and keys
	CRLAddr string // --crl-listen, if used
}

func newStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	dir := t.TempDir()
	s := stacktest.Start(t, stacktest.Options{
		PluginTimeout: 15 * time.Second,
		DataDir:       filepath.Join(dir, "data"),
		NoComponent:   true,
	})
	return &stack{Stack: s, Dir: dir}
}

// initCA creates the embedded CA in the data directory with "saslcert ca
// init".
func (st *stack) initCA(t *testing.T) {
	t.Helper()
	out := saslcertCmd(t, "ca", "init", "--data-dir", st.DataDir)
	t.Logf("saslcert ca init:\n%s", indent(out))
}

// writeFile writes data to a file in st.Dir and returns its path.
func (st *stack) writeFile(t *testing.T, name string, data []byte, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(st.Dir, name)
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// baseConfig is the TOML config of serve for this stack: where the server
// is, who the component is, where the secret and the data are. extra is
// appended (more settings, then [policy."..."] tables).
func (st *stack) baseConfig(t *testing.T, extra string) string {
	t.Helper()
	return fmt.Sprintf(`# saslcert serve --config
server-addr = %q
component = %q
domain = [%q]
secret-file = %q
data-dir = %q
request-timeout = "15s"
`, st.S.ComponentAddr(), st.S.ComponentJID(), st.S.Domain(), st.SecretFile(), st.DataDir) + extra
}

// freeAddr is a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe writes config to a file and runs "saslcert --log-level debug
// serve --config <file>" as the stack's component (stacktest's
// StartCommand: no SASLCERT_* variables reach it, so the config says
// everything); it returns once serve is connected to Prosody. A cleanup
// stops it; its log is shown if the test failed or SASLCERT_TEST_LOG is
// set.
func (st *stack) startServe(t *testing.T, config string) *stacktest.Component {
	t.Helper()
	cfgFile := st.writeFile(t, "saslcert.toml", []byte(config), 0o600)
	t.Logf("serve config (%s):\n%s", cfgFile, indent(config))
	return st.StartCommand(t, []string{"--log-level", "debug", "serve", "--config", cfgFile})
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// passwordLogin logs user in with SASL PLAIN (registering the account if
// needed); closed in a cleanup.
func (st *stack) passwordLogin(t *testing.T, user string) *xmppclient.Client {
	t.Helper()
	st.Register(t, user)
	ctx, cancel := deadline()
	defer cancel()
	c, err := st.LoginPassword(ctx, user)
	if err != nil {
		t.Fatalf("password login as %s: %v", st.JID(user), err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// certLogin logs in as account with SASL EXTERNAL presenting cert; a
// session that opens is closed in a cleanup.
func (st *stack) certLogin(t *testing.T, account jid.JID, cert *tls.Certificate) (*xmppclient.Client, error) {
	t.Helper()
	ctx, cancel := deadline()
	defer cancel()
	c, err := st.Dial(ctx, xmppclient.Config{JID: account, Cert: cert})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// mustRefuse fails t unless logging in with cert is refused with the SASL
// condition cond, and returns the failure.
func (st *stack) mustRefuse(t *testing.T, account jid.JID, cert *tls.Certificate, cond string) *xmppclient.AuthError {
	t.Helper()
	c, err := st.certLogin(t, account, cert)
	if err == nil {
		c.Close()
		t.Fatalf("login as %s succeeded; want <%s/>", account, cond)
	}
	var ae *xmppclient.AuthError
	if !errors.As(err, &ae) || ae.Condition != cond {
		t.Fatalf("login as %s: %v; want SASL <%s/>", account, err, cond)
	}
	return ae
}

// waitClosed fails t unless c's stream ends within eventTimeout.
func waitClosed(t *testing.T, c *xmppclient.Client) error {
	t.Helper()
	select {
	case err := <-c.Done():
		return err
	case <-time.After(eventTimeout):
		t.Fatalf("the session is still open %v later", eventTimeout)
		return nil
	}
}

// newKey is a fresh ECDSA P-256 key.
func newKey(t *testing.T) crypto.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// tlsCert is a client certificate for TLS: the chain (DER) and its key.
func tlsCert(chain [][]byte, key crypto.Signer) *tls.Certificate {
	return &tls.Certificate{Certificate: chain, PrivateKey: key}
}

// pemChain parses PEM text into DER certificates.
func pemChain(t *testing.T, text string) [][]byte {
	t.Helper()
	var out [][]byte
	rest := []byte(text)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		out = append(out, b.Bytes)
	}
	if len(out) == 0 {
		t.Fatalf("no PEM certificate in %q", text)
	}
	return out
}

func mustParse(t *testing.T, der []byte) *x509.Certificate {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// readPEMCert reads the single certificate of a PEM file.
func readPEMCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return mustParse(t, pemChain(t, string(data))[0])
}

// fetchCRL GETs a CRL, checks its signature with issuer and returns it.
func fetchCRL(t *testing.T, url string, issuer *x509.Certificate) *x509.RevocationList {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	crl, err := x509.ParseRevocationList(data)
	if err != nil {
		t.Fatalf("CRL from %s: %v", url, err)
	}
	if err := crl.CheckSignatureFrom(issuer); err != nil {
		t.Fatalf("CRL from %s: signature: %v", url, err)
	}
	return crl
}

// crlLists reports whether crl lists cert's serial number.
func crlLists(crl *x509.RevocationList, cert *x509.Certificate) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// storedRecord opens the data directory's database through a separate
// handle (stacktest's OpenStore, next to the running serve; SQLite in WAL
// mode allows that) and returns the record of der.
func (st *stack) storedRecord(t *testing.T, der []byte) *storage.Cert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	db, err := st.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec, err := db.FindCertByFingerprint(ctx, storage.FingerprintOf(der))
	if err != nil {
		t.Fatalf("the store has no record of the certificate: %v", err)
	}
	return rec
}
