package hostile

import (
	"context"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/storage"
)

// TestIntegrationTwoFormAccount (issue 10.5): a stored certificate whose
// owner and xmppAddr are straße@ (RFC 7622 keeps ß) must not log in as
// strasse@, the account Prosody's stringprep (ß -> ss) makes of the
// component's answer: that login was invisible to strasse (its <items/>
// were empty) and could not be revoked by it. The record is put straight
// into the store, as one made before the check (or by another tool) would
// be. The account strasse itself still logs in with its own certificate.
func TestIntegrationTwoFormAccount(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Domain: domain})
	st.Register(t, "strasse")

	sharp := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"straße@" + domain}})
	addRecordRaw(t, st, "straße@"+domain, "sharp s", sharp)
	own := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"strasse@" + domain}})
	st.AddCert(t, "strasse", "own", own, false)

	if r := tryLogin(st, "strasse", own); !r.ok || r.bound != "strasse@"+domain {
		t.Fatalf("strasse's own certificate: %+v, want a login as strasse@%s", r, domain)
	}
	for _, authzid := range []string{"", "strasse@" + domain, "straße@" + domain} {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		c, err := st.LoginCert(ctx, "strasse", sharp, authzid)
		cancel()
		if err == nil {
			bound := c.LocalAddr().String()
			c.Close()
			t.Fatalf("authzid %q: the straße@ certificate logged in as %s", authzid, bound)
		}
		t.Logf("authzid %q: refused: %v", authzid, err)
	}
	// Nothing changed in the store: the record is still there, untouched.
	for _, rec := range st.Certs(t) {
		if rec.Name == "sharp s" && (rec.State != storage.StateActive || rec.Account != "straße@"+domain) {
			t.Errorf("record changed: %+v", rec)
		}
	}
}

// addRecordRaw stores c for account without any check (no sasl.CheckUpload,
// no JID normalisation): a record as another tool or an older version may
// have written it.
func addRecordRaw(t *testing.T, st *stacktest.Stack, account, name string, c *certtest.Cert) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := st.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rec := &storage.Cert{
		Account:     account,
		Name:        name,
		DER:         c.DER,
		Fingerprint: storage.FingerprintOf(c.DER),
		NotBefore:   c.Cert.NotBefore,
		NotAfter:    c.Cert.NotAfter,
		Issuer:      c.Cert.Issuer.String(),
		Source:      storage.SourceUpload,
	}
	if err := db.AddCert(ctx, rec, storage.AddOptions{Actor: "hostile"}); err != nil {
		t.Fatalf("storing %s for %s: %v", name, account, err)
	}
}
