package catest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"go/build"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RequireEnv names the environment variable that turns a missing CA tool
// from a skip into a failure.
const RequireEnv = "SASLCERT_REQUIRE_CA_TOOLS"

// StartTimeout bounds how long a server may take to answer after start.
var StartTimeout = 30 * time.Second

// Binary returns the path of the tool name: from $PATH, else from
// $(go env GOPATH)/bin. If it is in neither, it skips tb, or fails it when
// RequireEnv is set.
func Binary(tb testing.TB, name string) string {
	tb.Helper()
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range filepath.SplitList(build.Default.GOPATH) {
		p := filepath.Join(dir, "bin", name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
			return p
		}
	}
	if os.Getenv(RequireEnv) == "" {
		tb.Skipf("%s is not installed (run scripts/install-ca-tools.sh); set %s to make this a failure", name, RequireEnv)
	}
	tb.Fatalf("%s is not installed and %s is set; run scripts/install-ca-tools.sh", name, RequireEnv)
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// addr is "127.0.0.1:port".
func addr(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// process is a child process whose output goes to a log file.
type process struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error // exit status, valid once done is closed
}

// start runs bin with args in dir, its output going to dir/<name>.log, with
// HOME (and STEPPATH) pointing into dir so that nothing is written to the
// user's home. It registers a cleanup that stops it (SIGTERM, then SIGKILL
// after 5 s) and, if the test failed, logs the tail of its output.
func start(tb testing.TB, name, dir, bin string, args ...string) *process {
	tb.Helper()
	logPath := filepath.Join(dir, name+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Stdin = nil
	cmd.Env = append(os.Environ(), "HOME="+dir, "STEPPATH="+filepath.Join(dir, ".step"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		tb.Fatalf("start %s: %v", name, err)
	}
	p := &process{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	tb.Cleanup(func() {
		p.stop()
		if tb.Failed() {
			tb.Logf("%s output (%s):\n%s", name, logPath, p.tail(4096))
		}
	})
	return p
}

// stop ends the process (and its process group) and waits for it.
func (p *process) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// exited reports whether the process has ended.
func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// tail returns the last n bytes of the process's output.
func (p *process) tail(n int) string {
	b, err := os.ReadFile(p.log)
	if err != nil {
		return err.Error()
	}
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return string(b)
}

// waitReady calls ready until it returns nil, the process exits or
// StartTimeout passes; the latter two fail tb with the process's output.
func (p *process) waitReady(tb testing.TB, ready func() error) {
	tb.Helper()
	deadline := time.Now().Add(StartTimeout)
	var err error
	for time.Now().Before(deadline) {
		if p.exited() {
			tb.Fatalf("%s exited during start-up (%v):\n%s", p.name, p.err, p.tail(4096))
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	tb.Fatalf("%s not ready after %s: %v\n%s", p.name, StartTimeout, err, p.tail(4096))
}

// caPair is a CA certificate with its key.
type caPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// newCA makes a P-256 CA: self-signed when parent is nil, else signed by
// parent; pathLen is its MaxPathLen (0 means MaxPathLenZero).
func newCA(tb testing.TB, name string, parent *caPair, pathLen int) *caPair {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(tb),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            pathLen,
		MaxPathLenZero:        pathLen == 0,
	}
	issuer, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), signer)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &caPair{cert: c, key: key}
}

// newServerCert makes a TLS server certificate for 127.0.0.1 and localhost
// signed by ca.
func newServerCert(tb testing.TB, ca *caPair) *caPair {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: randSerial(tb),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		tb.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatal(err)
	}
	return &caPair{cert: c, key: key}
}

func randSerial(tb testing.TB) *big.Int {
	tb.Helper()
	sn, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatal(err)
	}
	return sn.Add(sn, big.NewInt(1))
}

// writePEM writes the PEM blocks of certs to path (0644).
func writeCerts(tb testing.TB, path string, certs ...*x509.Certificate) {
	tb.Helper()
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// writeKey writes key as PKCS#8 PEM to path (0600).
func writeKey(tb testing.TB, path string, key crypto.Signer) {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		tb.Fatal(err)
	}
}

// errNotYet is what readiness probes return before the server answers.
var errNotYet = errors.New("not answering yet")

// fingerprint is the lower-case hex SHA-256 of der.
func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// waitHTTPOK waits until GET url, trusting root, answers 200 OK; what names
// the endpoint in the not-yet-ready error.
func waitHTTPOK(tb testing.TB, p *process, root *x509.Certificate, url, what string) {
	tb.Helper()
	pool := x509.NewCertPool()
	pool.AddCert(root)
	client := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	defer client.CloseIdleConnections()
	p.waitReady(tb, func() error {
		resp, err := client.Get(url)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%w: %s: %s", errNotYet, what, resp.Status)
		}
		return nil
	})
}
