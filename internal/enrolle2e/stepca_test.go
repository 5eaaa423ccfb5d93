package enrolle2e

import (
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/stepca"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// stepCAFiles writes what serve needs to use s: the provisioner's private
// JWK (0600), step-ca's root (PEM) and a bundle of root and intermediate
// for trusted_roots. It returns the settings for the TOML config.
func stepCAFiles(t *testing.T, st *stack, s *catest.StepCA) (settings, bundle string) {
	t.Helper()
	jwk, err := jose.JSONWebKey{Key: s.Key, KeyID: s.KeyID, Algorithm: string(jose.ES256), Use: "sig"}.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := st.writeFile(t, "provisioner.jwk", jwk, 0o600)
	rootPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Root.Raw})
	rootFile := st.writeFile(t, "stepca-root.crt", rootPEM, 0o644)
	bundle = st.writeFile(t, "stepca-bundle.crt",
		append(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Intermediate.Raw})...), 0o644)
	settings = fmt.Sprintf(`stepca-url = %q
stepca-provisioner = %q
stepca-key-file = %q
stepca-root = %q
`, s.URL, s.Provisioner, keyFile, rootFile)
	return settings, bundle
}

// TestEnrollStepCA is the story with step-ca as the domain's issuer, for a
// domain that accepts only CA-issued certificates: a self-signed upload is
// refused with a clear text; "Request a certificate" with a CSR gets a
// step-ca certificate; SASL EXTERNAL works with it; XEP-0257 revoke closes
// the session, refuses the next login and revokes it at step-ca, whose CRL
// then lists it.
func TestEnrollStepCA(t *testing.T) {
	st := newStack(t)
	s := catest.StartStepCA(t, catest.StepCAOptions{})
	settings, bundle := stepCAFiles(t, st, s)
	st.startServe(t, st.baseConfig(t, settings+fmt.Sprintf(`
[policy.%q]
issuer = "stepca"
lifetime = "24h"
allow_self_signed = false
trusted_roots = [%q]
`, st.S.Domain(), bundle)))
	comp := jid.MustParse(st.S.ComponentJID())
	bob := st.Register(t, "bob")
	pw := st.passwordLogin(t, "bob")
	ctx, cancel := deadline()
	defer cancel()

	// Self-signed uploads are refused.
	ssKey := newKey(t)
	now := time.Now()
	ss, err := enroll.SelfSigned(ssKey, bob, now.Add(-time.Minute), now.Add(24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	err = xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "self-made", ss, false)
	se := stanzaError(t, err)
	if se.Condition != stanza.NotAcceptable || !strings.Contains(se.Text[""], "accepts only certificates issued by its CA") {
		t.Fatalf("self-signed upload: %v; want not-acceptable explaining the policy", se)
	}
	t.Logf("self-signed upload to a CA-only domain: <%s/> %q", se.Condition, se.Text[""])

	// The form offers no self-signed field: step-ca signs CSRs only.
	key := newKey(t)
	res, err := requestCert(t, pw.Session, comp, map[string]string{
		enrollcmd.FieldCSR:  csrPEM(t, key, bob.String(), bob.String()),
		enrollcmd.FieldName: "workstation",
	})
	if err != nil {
		t.Fatalf("Request a certificate (step-ca): %v", err)
	}
	if res.Status != "completed" {
		t.Fatalf("status %q", res.Status)
	}
	chainText, _ := res.Form.value(enrollcmd.FieldChain)
	chain := pemChain(t, chainText)
	leaf := checkIssued(t, chain, bob, key, 24*time.Hour, s.Intermediate, s.Root, time.Time{})
	rec := st.storedRecord(t, chain[0])
	if rec.Source != storage.SourceEnrolled || rec.Account != bob.String() {
		t.Fatalf("stored record: account %s, source %s", rec.Account, rec.Source)
	}
	t.Logf("stored: account %s, name %q, source %s", rec.Account, rec.Name, rec.Source)

	// Uploading a certificate of the trusted CA is allowed (it is not
	// self-signed); it is already stored here, so the store says conflict.
	err = xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "again", chain[0], false)
	if se := stanzaError(t, err); se.Condition != stanza.Conflict {
		t.Fatalf("re-upload of the issued certificate: %v; want conflict (accepted by the policy, already stored)", se)
	}

	ext, err := st.certLogin(t, bob, tlsCert(chain, key))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the step-ca certificate: %v", err)
	}
	t.Logf("SASL EXTERNAL with the step-ca certificate: bound as %s", ext.LocalAddr())

	if err := xep0257.RevokeCert(ctx, pw.Session, jid.JID{}, "workstation"); err != nil {
		t.Fatalf("XEP-0257 revoke: %v", err)
	}
	closeErr := waitClosed(t, ext)
	t.Logf("after <revoke><name>workstation</name></revoke>: the EXTERNAL session was closed: %v", closeErr)
	ae := st.mustRefuse(t, bob, tlsCert(chain, key), "not-authorized")
	t.Logf("the next login with the revoked certificate: refused <%s/> %q", ae.Condition, ae.Text)
	crl := fetchCRL(t, s.CRLURL, s.Intermediate)
	if !crlLists(crl, leaf) {
		t.Fatalf("step-ca's CRL (number %s, %d entries) does not list serial %x", crl.Number, len(crl.RevokedCertificateEntries), leaf.SerialNumber)
	}
	t.Logf("step-ca's CRL from %s (number %s) lists serial %x", s.CRLURL, crl.Number, leaf.SerialNumber)

	// "Fetch my latest certificate" has nothing active left to give.
	latest := fetchLatest(t, pw.Session, comp)
	if latest.Form != nil || len(latest.Notes) == 0 {
		t.Fatalf("latest after the revoke: %+v; want only a note", latest)
	}
	t.Logf("Fetch my latest certificate after the revoke: %q", latest.Notes[0])
}

// newTrustedRootsStack starts the component with the embedded CA as issuer
// and both the embedded CA and a fresh step-ca as trusted roots of the
// domain (revocations read from step-ca's CRL at every login), and returns
// the step-ca and a client for it (the organisation's own CA, issuing out of
// band).
func newTrustedRootsStack(t *testing.T) (*stack, *catest.StepCA, *stepca.Client) {
	t.Helper()
	st := newStack(t)
	st.initCA(t)
	s := catest.StartStepCA(t, catest.StepCAOptions{})
	_, bundle := stepCAFiles(t, st, s)
	st.startServe(t, st.baseConfig(t, fmt.Sprintf(`
crl-max-age = "0s"

[policy.%q]
issuer = "embedded"
trusted_roots = ["embedded", %q]
crl_urls = [%q]
`, st.S.Domain(), bundle, s.CRLURL)))
	org, err := stepca.New(stepca.Config{URL: s.URL, Provisioner: s.Provisioner, Key: s.Key, KeyID: s.KeyID, Root: s.Root})
	if err != nil {
		t.Fatal(err)
	}
	return st, s, org
}
