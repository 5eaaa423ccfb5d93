package catest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// ESTVersion is the globalsign/est release whose estserver the tests run
// (scripts/install-ca-tools.sh builds it).
const ESTVersion = "v1.0.6"

// EST is a running globalsign/est test server ("FOR NON-PRODUCTION USE
// ONLY"). Its mock CA copies the CSR's subject and subjectAltName into the
// certificate as they are, issues for 90 days (capped at the CA's expiry)
// with EKU serverAuth+clientAuth, checks no credentials on enroll, and has no
// revocation.
type EST struct {
	URL  string            // "https://127.0.0.1:port" (the EST base is URL + "/.well-known/est")
	Root *x509.Certificate // trust anchor of the server's TLS certificate and of issued certificates
	CA   *x509.Certificate // the issuing CA (signed by Root)
	Dir  string
}

// StartEST generates a root and an issuing CA, a server certificate for
// 127.0.0.1 and a config that binds 127.0.0.1 only (without a config
// estserver listens on ":8443", every interface), runs estserver and returns
// once /cacerts answers. The server asks for client certificates chaining to
// Root (needed by simplereenroll). It is stopped in tb's cleanup.
func StartEST(tb testing.TB) *EST {
	tb.Helper()
	bin := Binary(tb, "estserver")
	dir := tb.TempDir()
	root := newCA(tb, "saslcert test EST root", nil, 1)
	ca := newCA(tb, "saslcert test EST CA", root, 0)
	server := newServerCert(tb, root)

	caCerts := filepath.Join(dir, "ca-chain.pem") // issuing CA first, root last
	caKey := filepath.Join(dir, "ca.key")
	rootFile := filepath.Join(dir, "root.pem")
	serverChain := filepath.Join(dir, "server-chain.pem")
	serverKey := filepath.Join(dir, "server.key")
	writeCerts(tb, caCerts, ca.cert, root.cert)
	writeKey(tb, caKey, ca.key)
	writeCerts(tb, rootFile, root.cert)
	writeCerts(tb, serverChain, server.cert)
	writeKey(tb, serverKey, server.key)

	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		tb.Fatal(err)
	}
	port := freePort(tb)
	cfg := map[string]any{
		"mock_ca": map[string]any{"certificates": caCerts, "private_key": caKey},
		"tls": map[string]any{
			"listen_address": addr(port),
			"certificates":   serverChain,
			"private_key":    serverKey,
			"client_cas":     []string{rootFile},
		},
		"allowed_hosts":        []string{"127.0.0.1", "localhost"},
		"healthcheck_password": hex.EncodeToString(pw),
		"rate_limit":           0,
		"timeout":              30,
		"log_file":             filepath.Join(dir, "estserver-requests.log"),
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "est.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	e := &EST{URL: "https://" + addr(port), Root: root.cert, CA: ca.cert, Dir: dir}

	p := start(tb, "estserver", dir, bin, "-config", cfgFile)
	waitHTTPOK(tb, p, root.cert, e.URL+"/.well-known/est/cacerts", "cacerts")
	return e
}
