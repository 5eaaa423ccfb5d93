package catest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// StepCAVersion is the step-ca release the tests were written against
// (scripts/install-ca-tools.sh installs it).
const StepCAVersion = "v0.30.2"

// StepCAOptions configure StartStepCA. The zero value is fine.
type StepCAOptions struct {
	// Provisioner is the JWK provisioner's name (default "saslcert-ra").
	Provisioner string
	// DefaultDuration and MaxDuration are the provisioner's
	// defaultTLSCertDuration and maxTLSCertDuration (default 24h and 720h).
	DefaultDuration, MaxDuration time.Duration
	// Template replaces the X.509 template (default XMPPTemplate with this
	// CA's CRL URL). It is a Go text/template in step's template language.
	Template string
}

// StepCA is a running step-ca.
type StepCA struct {
	URL          string            // "https://127.0.0.1:port"
	CRLURL       string            // plain-HTTP CRL, "http://127.0.0.1:port/1.0/crl"
	Root         *x509.Certificate // the CA's root; its TLS certificate chains to it
	Intermediate *x509.Certificate
	Provisioner  string        // JWK provisioner name
	Key          crypto.Signer // the provisioner's private key (ECDSA P-256)
	KeyID        string        // its kid: the RFC 7638 SHA-256 thumbprint, base64url
	Dir          string        // configuration, database and log
}

// RootFingerprint is the hex SHA-256 of the root's DER (what "step ca
// bootstrap --fingerprint" takes).
func (s *StepCA) RootFingerprint() string { return fingerprint(s.Root.Raw) }

// XMPPTemplate is a step-ca X.509 template that trusts only the token: the
// subject CN and the one id-on-xmppAddr (UTF8String) come from the token's
// sub, which saslcert sets to the authenticated JID; the CSR's names are
// ignored. %s is the CRL distribution point URL.
const XMPPTemplate = `{
  "subject": {"commonName": {{ toJson .Token.sub }}},
  "sans": [{"type": "1.3.6.1.5.5.7.8.5", "value": {{ printf "utf8:%%s" .Token.sub | toJson }}}],
  "keyUsage": ["digitalSignature"],
  "extKeyUsage": ["clientAuth"],
  "crlDistributionPoints": [%q]
}
`

// StartStepCA generates a CA (root and intermediate, ECDSA P-256, the
// intermediate key unencrypted so no password is asked for), a JWK
// provisioner with a fresh key and an X.509 template, writes ca.json and
// runs step-ca on 127.0.0.1 (HTTPS plus a plain-HTTP port for the CRL). It
// returns once /health answers, and stops step-ca in tb's cleanup.
func StartStepCA(tb testing.TB, o StepCAOptions) *StepCA {
	tb.Helper()
	bin := Binary(tb, "step-ca")
	if o.Provisioner == "" {
		o.Provisioner = "saslcert-ra"
	}
	if o.DefaultDuration == 0 {
		o.DefaultDuration = 24 * time.Hour
	}
	if o.MaxDuration == 0 {
		o.MaxDuration = 720 * time.Hour
	}
	dir := tb.TempDir()
	for _, d := range []string{"certs", "secrets", "templates", "db"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	root := newCA(tb, "saslcert test step-ca root", nil, 1)
	inter := newCA(tb, "saslcert test step-ca intermediate", root, 0)
	rootFile := filepath.Join(dir, "certs", "root_ca.crt")
	interFile := filepath.Join(dir, "certs", "intermediate_ca.crt")
	keyFile := filepath.Join(dir, "secrets", "intermediate_ca_key")
	writeCerts(tb, rootFile, root.cert)
	writeCerts(tb, interFile, inter.cert)
	writeKey(tb, keyFile, inter.key)

	provKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	jwk := jose.JSONWebKey{Key: provKey.Public(), Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		tb.Fatal(err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(tp)

	httpsPort, httpPort := freePort(tb), freePort(tb)
	for httpPort == httpsPort {
		httpPort = freePort(tb)
	}
	s := &StepCA{
		URL:          "https://" + addr(httpsPort),
		CRLURL:       "http://" + addr(httpPort) + "/1.0/crl",
		Root:         root.cert,
		Intermediate: inter.cert,
		Provisioner:  o.Provisioner,
		Key:          provKey,
		KeyID:        jwk.KeyID,
		Dir:          dir,
	}
	tmpl := o.Template
	if tmpl == "" {
		tmpl = fmt.Sprintf(XMPPTemplate, s.CRLURL)
	}
	tmplFile := filepath.Join(dir, "templates", "xmpp.tpl")
	if err := os.WriteFile(tmplFile, []byte(tmpl), 0o644); err != nil {
		tb.Fatal(err)
	}
	cfg := map[string]any{
		"root":            rootFile,
		"crt":             interFile,
		"key":             keyFile,
		"address":         addr(httpsPort),
		"insecureAddress": addr(httpPort),
		"dnsNames":        []string{"127.0.0.1", "localhost"},
		"logger":          map[string]any{"format": "text"},
		"db":              map[string]any{"type": "badgerv2", "dataSource": filepath.Join(dir, "db")},
		"crl":             map[string]any{"enabled": true, "generateOnRevoke": true, "cacheDuration": "24h"},
		"authority": map[string]any{
			"provisioners": []any{map[string]any{
				"type": "JWK",
				"name": o.Provisioner,
				"key":  jwk,
				"claims": map[string]any{
					"defaultTLSCertDuration": o.DefaultDuration.String(),
					"maxTLSCertDuration":     o.MaxDuration.String(),
					"minTLSCertDuration":     "5m",
					// Renewals go through saslcert (a new CSR and token), which
					// checks the account again.
					"disableRenewal": true,
				},
				"options": map[string]any{"x509": map[string]any{"templateFile": tmplFile}},
			}},
		},
		"tls": map[string]any{"minVersion": 1.2, "maxVersion": 1.3, "renegotiation": false},
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		tb.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "ca.json")
	if err := os.WriteFile(cfgFile, data, 0o600); err != nil {
		tb.Fatal(err)
	}

	p := start(tb, "step-ca", dir, bin, cfgFile)
	waitHTTPOK(tb, p, root.cert, s.URL+"/health", "/health")
	return s
}
