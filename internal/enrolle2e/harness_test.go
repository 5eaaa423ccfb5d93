package enrolle2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/prosodytest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// Deadlines: generous, for a loaded 2-core machine; nothing asserts on
// timing.
const (
	stepTimeout  = 30 * time.Second
	eventTimeout = 60 * time.Second
)

// logEnv: when set, the component's log is printed for passing tests too.
const logEnv = "SASLCERT_TEST_LOG"

// binary is the saslcert binary built by TestMain.
var binary string

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // every test skips; nothing to build
	}
	dir, err := os.MkdirTemp("", "saslcert-enrolle2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "saslcert")
	build := exec.Command("go", "build", "-o", binary, "./cmd/saslcert")
	build.Dir = prosodytest.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building saslcert: %v\n%s", err, out)
		return 1
	}
	return m.Run()
}

// saslcertCmd runs the saslcert binary with args and returns its combined
// output; a non-zero exit fails t.
func saslcertCmd(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("saslcert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// stack is a real Prosody with the plugin and delegation, a data directory
// and, once started, "saslcert serve".
type stack struct {
	S       *prosodytest.Server
	DataDir string
	Dir     string // for config files and keys
	CRLAddr string // --crl-listen, if used

	mu        sync.Mutex
	passwords map[string]string
	serve     *process
}

func newStack(t *testing.T) *stack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	s := prosodytest.Start(t, prosodytest.Options{Plugin: true, PluginTimeout: 15 * time.Second})
	dir := t.TempDir()
	return &stack{S: s, DataDir: filepath.Join(dir, "data"), Dir: dir, passwords: map[string]string{}}
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
// is, who the component is, where the data is. extra is appended (more
// settings, then [policy."..."] tables).
func (st *stack) baseConfig(t *testing.T, extra string) string {
	t.Helper()
	secret := st.writeFile(t, "component.secret", []byte(st.S.ComponentSecret+"\n"), 0o600)
	return fmt.Sprintf(`# saslcert serve --config
server-addr = %q
component = %q
domain = [%q]
secret-file = %q
data-dir = %q
request-timeout = "15s"
`, st.S.ComponentAddr, st.S.ComponentJID, st.S.Domain, secret, st.DataDir) + extra
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

// process is a running "saslcert serve".
type process struct {
	cmd  *exec.Cmd
	log  *logBuffer
	done chan struct{}
}

// startServe runs "saslcert --log-level debug serve --config <config>" and
// waits until it is connected to Prosody. A cleanup stops it.
func (st *stack) startServe(t *testing.T, config string) *process {
	t.Helper()
	cfgFile := st.writeFile(t, "saslcert.toml", []byte(config), 0o600)
	t.Logf("serve config (%s):\n%s", cfgFile, indent(config))
	buf := new(logBuffer)
	cmd := exec.Command(binary, "--log-level", "debug", "serve", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = buf, buf
	cmd.Env = os.Environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &process{cmd: cmd, log: buf, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() || os.Getenv(logEnv) != "" {
			t.Logf("saslcert serve log:\n%s", p.log.String())
		}
	})
	deadline := time.After(eventTimeout)
	for !strings.Contains(buf.String(), "connected to the server") {
		select {
		case <-p.done:
			t.Fatalf("saslcert serve exited:\n%s", buf.String())
		case <-deadline:
			t.Fatalf("saslcert serve did not connect within %v:\n%s", eventTimeout, buf.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	st.serve = p
	return p
}

// stop ends serve with SIGTERM (SIGKILL after 10 s) and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// logBuffer is a goroutine-safe log sink.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}

// account registers user once with a random password and returns its JID.
func (st *stack) account(t *testing.T, user string) jid.JID {
	t.Helper()
	st.mu.Lock()
	_, ok := st.passwords[user]
	st.mu.Unlock()
	if !ok {
		b := make([]byte, 12)
		_, _ = rand.Read(b)
		pw := hex.EncodeToString(b)
		st.S.Register(t, user, pw)
		st.mu.Lock()
		st.passwords[user] = pw
		st.mu.Unlock()
	}
	return jid.MustParse(user + "@" + st.S.Domain)
}

// passwordLogin logs user in with SASL PLAIN; closed in a cleanup.
func (st *stack) passwordLogin(t *testing.T, user string) *xmppclient.Client {
	t.Helper()
	me := st.account(t, user)
	st.mu.Lock()
	pw := st.passwords[user]
	st.mu.Unlock()
	c, err := st.dial(t, xmppclient.Config{JID: me, Password: pw})
	if err != nil {
		t.Fatalf("password login as %s: %v", me, err)
	}
	return c
}

// certLogin logs in as account with SASL EXTERNAL presenting cert.
func (st *stack) certLogin(t *testing.T, account jid.JID, cert *tls.Certificate) (*xmppclient.Client, error) {
	t.Helper()
	return st.dial(t, xmppclient.Config{JID: account, Cert: cert})
}

func (st *stack) dial(t *testing.T, cfg xmppclient.Config) (*xmppclient.Client, error) {
	t.Helper()
	cfg.Addr = st.S.C2SAddr
	cfg.RootCAs = st.S.RootCAs
	cfg.Timeout = stepTimeout
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c, err := xmppclient.Dial(ctx, cfg)
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

// storedRecord opens the data directory's database (next to the running
// serve; SQLite in WAL mode allows that) and returns the record of der.
func (st *stack) storedRecord(t *testing.T, der []byte) *storage.Cert {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	db, err := sqlite.Open(ctx, filepath.Join(st.DataDir, "saslcert.db"), sqlite.Options{})
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
