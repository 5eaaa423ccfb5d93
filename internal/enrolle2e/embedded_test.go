package enrolle2e

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// checkIssued checks an issued chain: the leaf carries exactly one name, the
// xmppAddr account (and, if any email address, exactly the account), EKU clientAuth only, is valid for lifetime (plus the
// minute of back-dating CAs do; 0: the CA's profile decides, and may add
// other extended key usages, as EST CAs do), certifies key's public key and chains
// through issuer (chain[1]) to root at the time at (zero: now). It returns
// the leaf.
func checkIssued(t *testing.T, chain [][]byte, account jid.JID, key crypto.Signer, lifetime time.Duration,
	issuer, root *x509.Certificate, at time.Time) *x509.Certificate {
	t.Helper()
	if len(chain) < 2 {
		t.Fatalf("the chain has %d certificates; want the certificate and its issuing CA", len(chain))
	}
	leaf := mustParse(t, chain[0])
	sans, err := sasl.CertSANs(leaf)
	if err != nil {
		t.Fatal(err)
	}
	if len(sans.XMPPAddrs) != 1 || !sans.XMPPAddrs[0].Equal(account) || len(sans.OtherNames) > 0 || len(sans.BadAddrs) > 0 ||
		len(leaf.DNSNames)+len(leaf.URIs)+len(leaf.IPAddresses) > 0 ||
		(len(leaf.EmailAddresses) > 0 && !slices.Equal(leaf.EmailAddresses, []string{account.String()})) {
		t.Fatalf("the certificate's names: xmppAddrs %v, other %v, DNS %v, email %v; want exactly the xmppAddr %s (and at most the email address %s)",
			sans.XMPPAddrs, sans.OtherNames, leaf.DNSNames, leaf.EmailAddresses, account, account)
	}
	switch {
	case lifetime == 0 && !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		t.Fatalf("extended key usage %v; want clientAuth among them", leaf.ExtKeyUsage)
	case lifetime > 0 && (!slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}) || len(leaf.UnknownExtKeyUsage) > 0):
		t.Fatalf("extended key usage %v %v; want clientAuth only", leaf.ExtKeyUsage, leaf.UnknownExtKeyUsage)
	}
	if leaf.IsCA {
		t.Fatal("the issued certificate is a CA")
	}
	valid := leaf.NotAfter.Sub(leaf.NotBefore)
	if lifetime > 0 && (valid < lifetime || valid > lifetime+2*time.Minute) {
		t.Fatalf("valid %s..%s (%s); want %s", leaf.NotBefore, leaf.NotAfter, valid, lifetime)
	}
	if pub, ok := leaf.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(key.Public()) {
		t.Fatal("the certificate certifies another key than the requester's")
	}
	if !bytes.Equal(chain[1], issuer.Raw) {
		t.Fatalf("chain[1] is %s; want the issuing CA %s", mustParse(t, chain[1]).Subject, issuer.Subject)
	}
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(root)
	inter.AddCert(issuer)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the certificate does not verify to %s: %v", root.Subject, err)
	}
	t.Logf("issued: xmppAddr %s (the only name), EKU %v, valid %s .. %s (%s), serial %x, issuer %q",
		sans.XMPPAddrs[0], ekuNames(leaf.ExtKeyUsage), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), valid,
		leaf.SerialNumber, leaf.Issuer.String())
	return leaf
}

// TestEnrollEmbeddedCA is the whole story with the embedded CA: password
// login, "Request a certificate" with a CSR, the certificate listed and
// stored as enrolled, SASL EXTERNAL with it, XEP-0257 revoke: the live
// session is closed, the next login refused, and the CRL served by
// --crl-listen lists it. Then the embedded CA certifies an uploaded
// self-signed certificate's key, and a CSR for another JID is refused.
func TestEnrollEmbeddedCA(t *testing.T) {
	st := newStack(t)
	st.initCA(t)
	st.CRLAddr = freeAddr(t)
	st.startServe(t, st.baseConfig(t, fmt.Sprintf(`
ca = "embedded"
crl-listen = %q

[policy.%q]
lifetime = "48h"
`, st.CRLAddr, st.S.Domain())))
	caCert := readPEMCert(t, filepath.Join(st.DataDir, "ca", "ca.crt"))
	root := readPEMCert(t, filepath.Join(st.DataDir, "ca", "root.crt"))
	comp := jid.MustParse(st.S.ComponentJID())

	alice := st.Register(t, "alice")
	pw := st.passwordLogin(t, "alice")

	cmds := listCommands(t, pw.Session, comp)
	t.Logf("commands of %s: %v", comp, cmds)
	if cmds[enrollcmd.NodeEnroll] != "Request a certificate" || cmds[enrollcmd.NodeLatest] != "Fetch my latest certificate" {
		t.Fatalf("commands %v; want %s and %s", cmds, enrollcmd.NodeEnroll, enrollcmd.NodeLatest)
	}

	key := newKey(t)
	res, err := requestCert(t, pw.Session, comp, map[string]string{
		enrollcmd.FieldCSR:  csrPEM(t, key, "", ""),
		enrollcmd.FieldName: "laptop",
	})
	if err != nil {
		t.Fatalf("Request a certificate: %v", err)
	}
	if res.Status != "completed" || res.Form == nil || res.Form.Type != "result" {
		t.Fatalf("status %q, form %+v; want completed with a result form", res.Status, res.Form)
	}
	t.Logf("note: %s", strings.Join(res.Notes, " / "))
	chainText, _ := res.Form.value(enrollcmd.FieldChain)
	chain := pemChain(t, chainText)
	leaf := checkIssued(t, chain, alice, key, 48*time.Hour, caCert, root, time.Time{})
	if !strings.Contains(leaf.CRLDistributionPoints[0], st.CRLAddr) {
		t.Errorf("CRL distribution point %v; want the --crl-listen address %s", leaf.CRLDistributionPoints, st.CRLAddr)
	}
	if name, _ := res.Form.value(enrollcmd.FieldName); name != "laptop" {
		t.Errorf("name %q, want laptop", name)
	}

	rec := st.storedRecord(t, chain[0])
	if rec.Source != storage.SourceEnrolled || rec.Account != alice.String() || rec.Name != "laptop" || rec.State != storage.StateActive {
		t.Fatalf("stored record: account %s, name %q, source %s, state %s; want %s, laptop, enrolled, active",
			rec.Account, rec.Name, rec.Source, rec.State, alice)
	}
	t.Logf("stored: account %s, name %q, source %s, state %s, %s", rec.Account, rec.Name, rec.Source, rec.State, rec.Fingerprint)
	ctx, cancel := deadline()
	defer cancel()
	items, err := xep0257.Fetch(ctx, pw.Session, jid.JID{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(items, func(it xep0257.Item) bool { return it.Name == "laptop" && bytes.Equal(it.Cert, chain[0]) }) {
		t.Fatalf("XEP-0257 items do not list the issued certificate: %+v", items)
	}

	latest := fetchLatest(t, pw.Session, comp)
	if lt, _ := latest.Form.value(enrollcmd.FieldChain); lt != chainText {
		t.Fatalf("Fetch my latest certificate gave another chain:\n%s", lt)
	}

	ext, err := st.certLogin(t, alice, tlsCert(chain, key))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the issued certificate: %v", err)
	}
	t.Logf("SASL EXTERNAL with the issued certificate: bound as %s", ext.LocalAddr())
	if !ext.LocalAddr().Bare().Equal(alice) {
		t.Fatalf("bound as %s, want %s", ext.LocalAddr(), alice)
	}

	if err := xep0257.RevokeCert(ctx, pw.Session, jid.JID{}, "laptop"); err != nil {
		t.Fatalf("XEP-0257 revoke: %v", err)
	}
	closeErr := waitClosed(t, ext)
	t.Logf("after <revoke><name>laptop</name></revoke>: the EXTERNAL session was closed: %v", closeErr)
	ae := st.mustRefuse(t, alice, tlsCert(chain, key), "not-authorized")
	t.Logf("the next login with the revoked certificate: refused <%s/> %q", ae.Condition, ae.Text)
	crl := fetchCRL(t, "http://"+st.CRLAddr+"/crl", caCert)
	if !crlLists(crl, leaf) {
		t.Fatalf("the embedded CA's CRL (number %s, %d entries) does not list serial %x", crl.Number, len(crl.RevokedCertificateEntries), leaf.SerialNumber)
	}
	t.Logf("the embedded CA's CRL from http://%s/crl (number %s) lists serial %x", st.CRLAddr, crl.Number, leaf.SerialNumber)

	// The embedded CA certifies the key of an uploaded self-signed
	// certificate.
	ssKey := newKey(t)
	now := time.Now()
	ss, err := enroll.SelfSigned(ssKey, alice, now.Add(-time.Minute), now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "phone (self-signed)", ss, false); err != nil {
		t.Fatalf("append: %v", err)
	}
	res, err = requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldSelfSigned: "phone (self-signed)", enrollcmd.FieldName: "phone"})
	if err != nil {
		t.Fatalf("Request a certificate for an uploaded key: %v", err)
	}
	chainText, _ = res.Form.value(enrollcmd.FieldChain)
	chain = pemChain(t, chainText)
	checkIssued(t, chain, alice, ssKey, 48*time.Hour, caCert, root, time.Time{})
	ext, err = st.certLogin(t, alice, tlsCert(chain, ssKey))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the certificate for the uploaded key: %v", err)
	}
	ext.Close()

	// A CSR that asks for another JID is refused before the CA signs
	// anything; the text says why.
	_, err = requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldCSR: csrPEM(t, newKey(t), "", "mallory@example.org")})
	se := stanzaError(t, err)
	if se.Condition != stanza.BadRequest || !strings.Contains(se.Text[""], "mallory@example.org") {
		t.Fatalf("CSR for another JID: %v; want bad-request naming it", se)
	}
	t.Logf("a CSR asking for mallory@example.org: <%s/> %q", se.Condition, se.Text[""])
}

// ekuNames names extended key usages for the log.
func ekuNames(ekus []x509.ExtKeyUsage) []string {
	var out []string
	for _, u := range ekus {
		switch u {
		case x509.ExtKeyUsageClientAuth:
			out = append(out, "clientAuth")
		case x509.ExtKeyUsageServerAuth:
			out = append(out, "serverAuth")
		default:
			out = append(out, fmt.Sprint(int(u)))
		}
	}
	return out
}
