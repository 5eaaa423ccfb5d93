package enrolle2e

import (
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"crypto"
	"crypto/x509"

	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// TestEnrollTrustedRootsTwoFormAccount (issue 10.5): a certificate of a
// trusted CA (here the embedded CA, through trusted_roots, never stored)
// whose xmppAddr is straße@ must not log in as strasse@, the account
// Prosody's stringprep makes of straße@. The CA's key signs it directly, as
// a CA that does not know the rule (any organisation's CA) would. A
// certificate of the same CA for strasse@ itself logs in.
func TestEnrollTrustedRootsTwoFormAccount(t *testing.T) {
	st := newStack(t)
	st.initCA(t)
	st.startServe(t, st.baseConfig(t, fmt.Sprintf(`
[policy.%q]
issuer = "embedded"
trusted_roots = ["embedded"]
`, st.S.Domain())))
	strasse := st.Register(t, "strasse")

	dir := filepath.Join(st.DataDir, "ca")
	ca, err := localca.Load(dir, localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	parent := &certtest.Cert{Cert: ca.Cert(), DER: ca.Cert().Raw, Key: readCAKey(t, filepath.Join(dir, localca.KeyFile))}

	own := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{strasse.String()}, Parent: parent})
	c, err := st.certLogin(t, strasse, tlsCert([][]byte{own.DER, ca.Cert().Raw}, own.Key))
	if err != nil {
		t.Fatalf("trusted-roots login with a certificate for %s: %v", strasse, err)
	}
	t.Logf("control: a trusted certificate for %s logs in as %s", strasse, c.LocalAddr())
	c.Close()

	sharp := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"straße@" + st.S.Domain()}, Parent: parent})
	ae := st.mustRefuse(t, strasse, tlsCert([][]byte{sharp.DER, ca.Cert().Raw}, sharp.Key), "not-authorized")
	t.Logf("a trusted certificate for straße@%s: refused <%s/> %q", st.S.Domain(), ae.Condition, ae.Text)
}

// readCAKey reads the embedded CA's PKCS#8 PEM key.
func readCAKey(t *testing.T, path string) crypto.Signer {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		t.Fatalf("%s: %T is not a crypto.Signer", path, k)
	}
	return s
}
