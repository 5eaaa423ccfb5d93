package hostile

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/pluginproto"
	"github.com/saslcert/saslcert/storage"
)

// hcase is one hostile input: what is sent, and the exact answer expected.
type hcase struct {
	cat, name string
	want      string                    // the answer, as stacktest.Node.Outcome (or innerOutcome) describes it
	run       func(t *testing.T) string // sends the input, returns the answer
	// prosodyOnly, if set, says why the case does not apply to ejabberd
	// (it is skipped there).
	prosodyOnly string
	// ejabberd, if set, is the exact answer on ejabberd where only the
	// server's own wording of the same refusal differs.
	ejabberd string
}

// TestIntegrationHostileInputs sends every hostile input through a real
// Prosody (mod_saslcert, mod_delegation) to the real component on a real
// SQLite file. For each case it asserts the exact answer (type, condition
// and text), that the store is unchanged (digest of every record and audit
// entry), and that the component still answers (hamlet's items and an
// EXTERNAL login).
func TestIntegrationHostileInputs(t *testing.T) {
	if testing.Short() {
		t.Skip("full-stack test (-short)")
	}
	for _, srv := range servers() {
		t.Run(srv.name, func(t *testing.T) { runHostileInputs(t, srv) })
	}
}

// runHostileInputs runs every case on srv; on ejabberd, the cases whose
// answer comes from Prosody itself (or that need its forge module) are
// skipped with their reason (hcase.prosodyOnly).
func runHostileInputs(t *testing.T, srv server) {
	w := newWorld(t, srv)
	cases := w.cases(t)
	t.Logf("%d hostile cases", len(cases))
	if len(cases) < 40 {
		t.Fatalf("only %d cases; the issue asks for at least 40", len(cases))
	}
	var table strings.Builder
	table.WriteString("| # | category | case | answer |\n|---|---|---|---|\n")
	seen := map[string]bool{}
	for i, c := range cases {
		if seen[c.cat+"/"+c.name] {
			t.Fatalf("duplicate case %s/%s", c.cat, c.name)
		}
		seen[c.cat+"/"+c.name] = true
		fmt.Fprintf(&table, "| %d | %s | %s | `%s` |\n", i+1, c.cat, c.name, strings.ReplaceAll(c.want, "|", `\|`))
		t.Run(c.cat+"/"+c.name, func(t *testing.T) {
			if w.ca != nil && c.prosodyOnly != "" {
				t.Skip("Prosody only: " + c.prosodyOnly)
			}
			want := c.want
			if w.ca != nil && c.ejabberd != "" {
				want = c.ejabberd
			}
			before := w.st.Digest(t)
			got := c.run(t)
			if got != want {
				t.Errorf("answer:\n got: %s\nwant: %s", got, want)
			}
			if strings.HasPrefix(got, "success") || got == "result" {
				t.Errorf("a hostile input succeeded: %s", got)
			}
			if after := w.st.Digest(t); after != before {
				t.Errorf("the store changed:\nbefore: %s\n after: %s", before, after)
			}
			w.checkAlive(t)
		})
	}
	if p := os.Getenv(tableEnv); p != "" && w.ca == nil {
		if err := os.WriteFile(p, []byte(table.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// newWorld starts the stack and sets up the accounts the cases attack:
// hamlet (the attacker: active, disabled, revoked and expired-since-upload
// certificates, and the two-xmppAddr fixture naming hamlet and horatio),
// horatio (the victim, with a live EXTERNAL session) and ophelia (at the
// per-account limit).
func newWorld(t *testing.T, srv server) *world {
	o, ca := srv.options(t, stacktest.Options{Domain: domain, Rogue: true})
	o.Forge = ca == nil // mod_stacktest_forge is a Prosody module
	st := stacktest.Start(t, o)
	for _, u := range []string{"hamlet", "horatio", "ophelia"} {
		st.Register(t, u)
	}
	w := &world{t: t, st: st, ca: ca}
	hamlet := w.login(t, "hamlet")
	w.hamletCert = w.newCert(t, certtest.Options{CommonName: "hamlet laptop", XMPPAddrs: []string{"hamlet@" + domain}})
	mustResult(t, hamlet, "set", "", appendXML("laptop", w.hamletCert.DER))
	w.sharedDER = fixtureDER(t, "two-xmppaddrs.pem")
	mustResult(t, hamlet, "set", "", appendXML("shared", w.sharedDER))
	w.disabled = w.newCert(t, certtest.Options{CommonName: "hamlet old", XMPPAddrs: []string{"hamlet@" + domain}})
	mustResult(t, hamlet, "set", "", appendXML("old-disabled", w.disabled.DER))
	mustResult(t, hamlet, "set", "", nameOnlyXML("disable", "old-disabled"))
	w.revoked = w.newCert(t, certtest.Options{CommonName: "hamlet lost", XMPPAddrs: []string{"hamlet@" + domain}})
	mustResult(t, hamlet, "set", "", appendXML("old-revoked", w.revoked.DER))
	mustResult(t, hamlet, "set", "", nameOnlyXML("revoke", "old-revoked"))
	// A certificate that was valid when stored and has expired since:
	// stored directly, as an upload now would refuse it.
	now := time.Now()
	w.expired = w.newCert(t, certtest.Options{CommonName: "hamlet expired", XMPPAddrs: []string{"hamlet@" + domain},
		NotBefore: now.Add(-48 * time.Hour), NotAfter: now.Add(-24 * time.Hour)})
	func() {
		db, err := st.OpenStore(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		rec := &storage.Cert{Account: "hamlet@" + domain, Name: "old-expired", DER: w.expired.DER,
			Fingerprint: storage.FingerprintOf(w.expired.DER), NotBefore: w.expired.Cert.NotBefore,
			NotAfter: w.expired.Cert.NotAfter, Issuer: w.expired.Cert.Issuer.String(), Source: storage.SourceUpload}
		if err := db.AddCert(context.Background(), rec, storage.AddOptions{Actor: "stacktest"}); err != nil {
			t.Fatal(err)
		}
	}()
	w.hamletItems = 3 // laptop, shared, old-expired

	horatio := w.login(t, "horatio")
	w.horatioCert = w.newCert(t, certtest.Options{CommonName: "horatio phone", XMPPAddrs: []string{"horatio@" + domain}})
	mustResult(t, horatio, "set", "", appendXML("phone", w.horatioCert.DER))
	live, err := st.RawLoginCert(ctxT(t), w.horatioCert, "")
	if err != nil {
		t.Fatalf("horatio's EXTERNAL login: %v", err)
	}
	t.Cleanup(func() { live.Close() })
	w.horatioLive = live

	ophelia := w.login(t, "ophelia")
	for i := range 10 {
		c := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"ophelia@" + domain}})
		mustResult(t, ophelia, "set", "", appendXML(fmt.Sprintf("c%d", i), c.DER))
	}
	w.probe = w.login(t, "hamlet")
	return w
}

// iqAs sends one IQ from a fresh password session of user and describes the
// answer (a stream error counts as the answer).
func (w *world) iqAs(t *testing.T, user, typ, to, payload string) string {
	t.Helper()
	c := w.login(t, user)
	n, err := c.IQ(typ, to, payload)
	var se *stacktest.StreamError
	if errors.As(err, &se) {
		return se.Node.Outcome()
	}
	if err != nil {
		t.Fatalf("IQ: %v", err)
	}
	return n.Outcome()
}

// sendAs writes raw bytes from a fresh session of user and describes the
// first thing the server answers.
func (w *world) sendAs(t *testing.T, user, raw string) string {
	t.Helper()
	c := w.login(t, user)
	if err := c.Send(raw); err != nil {
		t.Fatal(err)
	}
	n, err := c.Next(stepTimeout)
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	return n.Outcome()
}

// forge makes the server send raw and describes the reply it got.
func (w *world) forge(t *testing.T, raw string) string {
	t.Helper()
	c := w.login(t, "hamlet")
	n, err := c.Forge(raw)
	if err != nil {
		t.Fatalf("forge: %v", err)
	}
	return innerOutcome(n)
}

// sasl presents cert (nil: none) in TLS and sends <auth mechanism='EXTERNAL'>
// with body; it describes the answer.
func (w *world) sasl(t *testing.T, cert *certtest.Cert, body string) string {
	t.Helper()
	c, err := w.st.DialRaw(ctxT(t), cert)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	n, err := c.Auth("EXTERNAL", body)
	if err != nil {
		t.Fatalf("auth: %v", err)
	}
	return n.Outcome()
}

func authzid(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// utf16BE encodes s as a BMPString's content.
func utf16BE(s string) []byte {
	var b []byte
	for _, r := range utf16.Encode([]rune(s)) {
		b = append(b, byte(r>>8), byte(r))
	}
	return b
}

// Texts the component sends (xep0257/errors.go, component/plugin.go).
const (
	textPEM           = "x509cert holds PEM; send the base64 of the DER certificate without the -----BEGIN/END----- lines"
	textNotRegistered = "this certificate may not log in"
	textAuthzid       = "the authorization identity does not match the certificate"
	textExpired       = "the certificate has expired or is not yet valid"
)

func (w *world) cases(t *testing.T) []hcase {
	hamlet := "hamlet@" + domain
	var cs []hcase
	add := func(cat, name, want string, run func(t *testing.T) string) {
		cs = append(cs, hcase{cat: cat, name: name, want: want, run: run})
	}
	// up: hamlet appends der as "evil" (delegated, no 'to').
	up := func(cat, name, want string, der []byte) {
		add(cat, name, want, func(t *testing.T) string { return w.iqAs(t, "hamlet", "set", "", appendXML("evil", der)) })
	}
	payload := func(name, typ, xml, want string) {
		add("payload", name, want, func(t *testing.T) string { return w.iqAs(t, "hamlet", typ, "", xml) })
	}
	refused := func(detail string) string { return "error modify/not-acceptable: " + detail }
	hamletCert := func(o certtest.Options) []byte {
		if o.XMPPAddrs == nil && o.OtherNames == nil && o.RawSAN == nil {
			o.XMPPAddrs = []string{hamlet}
		}
		return stacktest.NewCert(t, o).DER
	}

	// --- Malformed and oversized XEP-0257 payloads -------------------------
	payload("unknown request element", "set", "<remove xmlns='"+nsCerts+"'><name>laptop</name></remove>",
		"error cancel/feature-not-implemented: <remove/> is not a urn:xmpp:saslcert:1 request; expected items, append, disable or revoke")
	payload("items in a set IQ", "set", itemsXML(), `error modify/bad-request: <items/> must be sent in an IQ of type get, not "set"`)
	payload("append in a get IQ", "get", appendXML("evil", w.hamletCert.DER), `error modify/bad-request: <append/> must be sent in an IQ of type set, not "get"`)
	payload("append without name", "set", "<append xmlns='"+nsCerts+"'><x509cert>"+b64(w.hamletCert.DER)+"</x509cert></append>",
		"error modify/bad-request: <append/> has no <name/>")
	payload("append without x509cert", "set", "<append xmlns='"+nsCerts+"'><name>evil</name></append>",
		"error modify/bad-request: <append/> has no <x509cert/>")
	payload("two names", "set", "<append xmlns='"+nsCerts+"'><name>a</name><name>b</name><x509cert>AAAA</x509cert></append>",
		"error modify/bad-request: <append/> has more than one <name/>")
	payload("two x509cert", "set", "<append xmlns='"+nsCerts+"'><name>a</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert><x509cert>"+b64(w.sharedDER)+"</x509cert></append>",
		"error modify/bad-request: <append/> has more than one <x509cert/>")
	payload("unknown child element", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert><owner>horatio@shakespeare.lit</owner></append>",
		"error modify/bad-request: unexpected element <owner/> in <append/>")
	payload("unknown child in another namespace", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert><x xmlns='jabber:x:data' type='submit'/></append>",
		"error modify/bad-request: unexpected element <x xmlns='jabber:x:data'/> in <append/>")
	payload("unknown child in revoke", "set", "<revoke xmlns='"+nsCerts+"'><name>laptop</name><all/></revoke>",
		"error modify/bad-request: unexpected element <all/> in <revoke/>")
	payload("text outside the children", "set", "<append xmlns='"+nsCerts+"'>junk<name>evil</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert></append>",
		"error modify/bad-request: <append/> must not contain text outside its child elements")
	payload("element inside name", "set", "<append xmlns='"+nsCerts+"'><name>a<b/></name><x509cert>AAAA</x509cert></append>",
		"error modify/bad-request: <name/> must contain only text, not <b/>")
	payload("no-cert-management with content", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert><no-cert-management>false</no-cert-management></append>",
		"error modify/bad-request: <no-cert-management/> must be empty")
	add("payload", "XML not well-formed", "stream-error not-well-formed", func(t *testing.T) string {
		return w.sendAs(t, "hamlet", "<iq type='set' id='nwf'><append xmlns='"+nsCerts+"'><name>evil</nmae></append></iq>")
	})
	payload("empty x509cert", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>  </x509cert></append>",
		"error modify/bad-request: <x509cert/> is empty")
	payload("bad base64", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>MIIB!!not*base64??</x509cert></append>",
		"error modify/not-acceptable: x509cert is not valid base64")
	payload("base64 with a missing character", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+b64(w.hamletCert.DER)[1:]+"</x509cert></append>",
		"error modify/not-acceptable: x509cert is not valid base64")
	payload("PEM instead of base64 DER", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+string(stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{hamlet}}).CertPEM())+"</x509cert></append>",
		"error modify/not-acceptable: "+textPEM)
	up("payload", "PEM text wrapped in base64", refused("the data is PEM text, not a DER certificate; send the base64 lines between BEGIN and END, without them"),
		stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{hamlet}}).CertPEM())
	payload("x509cert over the size limit", "set", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+strings.Repeat("QUFB", 5000)+"</x509cert></append>",
		"error modify/policy-violation: x509cert is larger than 16384 bytes of base64")
	hugeNames := make([]string, 1500)
	for i := range hugeNames {
		hugeNames[i] = fmt.Sprintf("host%04d.%s", i, domain)
	}
	up("payload", "huge certificate (1500 DNS names, valid otherwise)", "error modify/policy-violation: x509cert is larger than 16384 bytes of base64",
		hamletCert(certtest.Options{XMPPAddrs: []string{hamlet}, DNSNames: hugeNames}))
	add("payload", "stanza over Prosody's 256 KiB limit", "stream-error policy-violation: XML stanza is too big", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", "<append xmlns='"+nsCerts+"'><name>evil</name><x509cert>"+strings.Repeat("QUFB", 80000)+"</x509cert></append>")
	})

	// --- DER ---------------------------------------------------------------
	up("der", "truncated DER", refused("the data is not a valid X.509 certificate (not a DER SEQUENCE); upload one DER-encoded certificate"),
		fixture(t, "truncated.der"))
	up("der", "DER with trailing garbage", refused("13 bytes follow the certificate; upload exactly one DER-encoded certificate and nothing else"),
		fixture(t, "trailing-data.der"))
	chain := fixtureDERs(t, "chain.pem")
	up("der", "chain of two certificates", refused(fmt.Sprintf("the data holds more than one certificate (%d bytes follow the first); upload only your own certificate, not a chain", len(chain[1]))),
		bytes.Join(chain, nil))
	notCert := []byte{0x30, 0x03, 0x02, 0x01, 0x00}
	_, x509err := x509.ParseCertificate(notCert)
	up("der", "DER SEQUENCE that is not a certificate", refused("the data is not a valid X.509 certificate ("+x509err.Error()+"); upload one DER-encoded certificate"), notCert)
	up("der", "neither PEM nor DER", refused("the data is not a valid X.509 certificate (not a DER SEQUENCE); upload one DER-encoded certificate"),
		fixture(t, "garbage.bin"))

	// --- xmppAddr and identity --------------------------------------------
	addr := func(why string) string {
		return refused("the certificate's xmppAddr cannot be used: " + why + "; it must be a UTF8String holding the JID " + hamlet)
	}
	wrongAccount := func(names string) string { return refused("the certificate names " + names + " but you are " + hamlet) }
	srvName := []int{1, 3, 6, 1, 5, 5, 7, 8, 7} // id-on-dnsSRV
	up("identity", "xmppAddr with the wrong OID (id-on-dnsSRV)",
		refused("the certificate has no id-on-xmppAddr; its otherName of type 1.3.6.1.5.5.7.8.7 is not a JID; add the subjectAltName otherName:1.3.6.1.5.5.7.8.5;UTF8:"+hamlet),
		hamletCert(certtest.Options{OtherNames: []certtest.OtherName{certtest.UTF8OtherName(srvName, hamlet)}}))
	up("identity", "xmppAddr as a BMPString", addr("not a UTF8String (BMPString)"), fixtureDER(t, "xmppaddr-bmpstring.pem"))
	up("identity", "xmppAddr as an IA5String", addr("not a UTF8String (IA5String)"), fixtureDER(t, "xmppaddr-ia5string.pem"))
	up("identity", "xmppAddr with an embedded NUL", addr("contains a NUL byte"), fixtureDER(t, "xmppaddr-nul.pem"))
	up("identity", "xmppAddr with a control character", addr("contains the control character U+0007"),
		hamletCert(certtest.Options{XMPPAddrs: []string{hamlet + "\a"}}))
	badJID := "hamlet@shakespeare lit"
	_, jidErr := jid.Parse(badJID)
	up("identity", "xmppAddr that is not a valid JID", addr("invalid JID "+strconv.Quote(badJID)+": "+jidErr.Error()),
		hamletCert(certtest.Options{XMPPAddrs: []string{badJID}}))
	up("identity", "xmppAddr of another account", wrongAccount("horatio@"+domain),
		hamletCert(certtest.Options{XMPPAddrs: []string{"horatio@" + domain}}))
	up("identity", "xmppAddr of another domain", wrongAccount("hamlet@elsinore.lit"),
		hamletCert(certtest.Options{XMPPAddrs: []string{"hamlet@elsinore.lit"}}))
	up("identity", "uppercase spelling of another account", wrongAccount("horatio@"+domain),
		hamletCert(certtest.Options{XMPPAddrs: []string{"HORATIO@Shakespeare.LIT"}}))
	lookalike := "h\u0430mlet@" + domain // Cyrillic а
	up("identity", "Unicode look-alike of the account (fixture, Cyrillic a)", wrongAccount(lookalike+" ("+strconv.QuoteToASCII(lookalike)+")"),
		fixtureDER(t, "lookalike.pem"))
	lookDomain := "hamlet@shakespe\u0430re.lit"
	up("identity", "Unicode look-alike of the domain", wrongAccount(lookDomain+" ("+strconv.QuoteToASCII(lookDomain)+")"),
		hamletCert(certtest.Options{XMPPAddrs: []string{lookDomain}}))
	up("identity", "UPN-only certificate naming the account",
		refused("the certificate has no id-on-xmppAddr; its otherName of type 1.3.6.1.4.1.311.20.2.3 is not a JID; add the subjectAltName otherName:1.3.6.1.5.5.7.8.5;UTF8:"+hamlet),
		hamletCert(certtest.Options{OtherNames: []certtest.OtherName{certtest.UTF8OtherName(certtest.OIDMicrosoftUPN, hamlet)}}))
	up("identity", "UPN-only certificate (fixture)",
		refused("the certificate has no id-on-xmppAddr; its otherName of type 1.3.6.1.4.1.311.20.2.3 is not a JID; add the subjectAltName otherName:1.3.6.1.5.5.7.8.5;UTF8:"+hamlet),
		fixtureDER(t, "upn-only.pem"))
	up("identity", "no subjectAltName, account in the CN",
		refused("the certificate has no id-on-xmppAddr subjectAltName; add otherName:1.3.6.1.5.5.7.8.5;UTF8:"+hamlet),
		stacktest.NewCert(t, certtest.Options{CommonName: hamlet}).DER)
	up("identity", "a good xmppAddr next to a BMPString one",
		refused("one of the certificate's xmppAddrs cannot be used: not a UTF8String (BMPString); every xmppAddr must be a UTF8String holding a valid JID"),
		hamletCert(certtest.Options{XMPPAddrs: []string{hamlet}, OtherNames: []certtest.OtherName{{OID: certtest.OIDXMPPAddr, Value: certtest.TLV(cbasn1.Tag(30), utf16BE(hamlet))}}}))
	up("identity", "two different forced resources",
		refused(`the certificate names `+hamlet+` with the different resources "a" and "b"; it may force at most one resource`),
		hamletCert(certtest.Options{XMPPAddrs: []string{hamlet + "/a", hamlet + "/b"}}))

	// --- Keys, signatures, certificate kinds, validity ----------------------
	up("policy", "RSA-1024 key", refused("RSA key of 1024 bits; at least 2048 are required"), fixtureDER(t, "rsa1024.pem"))
	up("policy", "SHA-1 signature", refused("signed with SHA1-RSA; SHA-1 and MD5 signatures are refused"), fixtureDER(t, "sha1.pem"))
	up("policy", "ECDSA P-224 key", refused("ECDSA key on curve P-224; only P-256, P-384 and P-521 are accepted"),
		hamletCert(certtest.Options{XMPPAddrs: []string{hamlet}, KeyType: certtest.ECDSAP224}))
	up("policy", "CA certificate", refused("the certificate is a CA certificate (basicConstraints CA:TRUE); upload an end-entity client certificate"),
		fixtureDER(t, "ca.pem"))
	up("policy", "serverAuth-only EKU", refused("the certificate's extended key usage (serverAuth) does not allow clientAuth; upload a certificate whose extended key usage includes clientAuth, or has none"),
		fixtureDER(t, "serverauth-only.pem"))
	up("policy", "not yet valid", refused("the certificate is not valid before 2100-01-01T00:00:00Z; upload a certificate that is valid now (or check your clock)"),
		fixtureDER(t, "not-yet-valid.pem"))
	up("policy", "expired", refused("the certificate expired on 2021-01-01T00:00:00Z; upload a certificate that is valid now"),
		fixtureDER(t, "expired.pem"))

	// --- Names ---------------------------------------------------------------
	named := func(name, raw, want string) {
		add("name", name, want, func(t *testing.T) string {
			return w.iqAs(t, "hamlet", "set", "", "<append xmlns='"+nsCerts+"'><name>"+raw+"</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert></append>")
		})
	}
	named("empty name", "", "error modify/bad-request: <name/> is empty")
	named("blank name", " \t\n ", "error modify/not-acceptable: name is blank")
	named("name of 65 characters", strings.Repeat("x", 65), "error modify/not-acceptable: name is longer than 64 characters")
	named("name of 100 KiB", strings.Repeat("x", 100<<10), "error modify/not-acceptable: name is longer than 64 characters")
	named("name with a tab inside", "lap\ttop", "error modify/not-acceptable: name contains a control character")
	named("name with a C1 control (NEL)", "lap&#x85;top", "error modify/not-acceptable: name contains a control character")
	named("name with DEL", "lap\x7ftop", "error modify/not-acceptable: name contains a control character")
	add("name", "name with a C0 control (not XML)", "stream-error not-well-formed", func(t *testing.T) string {
		return w.sendAs(t, "hamlet", "<iq type='set' id='c0'><append xmlns='"+nsCerts+"'><name>lap\x01top</name><x509cert>"+b64(w.hamletCert.DER)+"</x509cert></append></iq>")
	})

	// --- Limits, duplicates, other accounts ---------------------------------
	add("limits", "five appends past the per-account limit", "error modify/policy-violation: at most 10 active certificates per account; disable or revoke one first", func(t *testing.T) string {
		c := w.login(t, "ophelia")
		var outs []string
		for i := range 5 {
			der := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"ophelia@" + domain}}).DER
			n, err := c.IQ("set", "", appendXML(fmt.Sprintf("extra%d", i), der))
			if err != nil {
				t.Fatal(err)
			}
			if o := n.Outcome(); len(outs) == 0 || o != outs[0] {
				outs = append(outs, o)
			}
		}
		return strings.Join(outs, " / ")
	})
	add("limits", "name already in use", `error cancel/conflict: a certificate named "laptop" already exists`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", appendXML("laptop", stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{hamlet}}).DER))
	})
	add("limits", "the same certificate again under another name", "error cancel/conflict: this certificate is already stored", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", appendXML("laptop-again", w.hamletCert.DER))
	})
	add("limits", "re-upload of a revoked certificate", "error cancel/conflict: this certificate is already stored", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", appendXML("back-from-the-dead", w.revoked.DER))
	})
	add("limits", "another account uploads a certificate naming both", "error cancel/conflict: this certificate is already stored", func(t *testing.T) string {
		return w.iqAs(t, "horatio", "set", "", appendXML("stolen", w.sharedDER))
	})
	add("limits", "disable an unknown name", `error cancel/item-not-found: no active certificate named "nope"`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", nameOnlyXML("disable", "nope"))
	})
	add("limits", "revoke an unknown name", `error cancel/item-not-found: no active certificate named "nope"`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", nameOnlyXML("revoke", "nope"))
	})
	add("limits", "revoke a revoked certificate again", `error cancel/item-not-found: no active certificate named "old-revoked"`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", nameOnlyXML("revoke", "old-revoked"))
	})
	add("limits", "disable a revoked certificate", `error cancel/item-not-found: no active certificate named "old-revoked"`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "", nameOnlyXML("disable", "old-revoked"))
	})
	add("accounts", "revoke addressed to another account", "error auth/forbidden: you may only manage your own certificates", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", "horatio@"+domain, nameOnlyXML("revoke", "phone"))
	})
	add("accounts", "items of another account", "error auth/forbidden: you may only manage your own certificates", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "get", "horatio@"+domain, itemsXML())
	})
	add("accounts", "revoke another account's name sent to the component directly", `error cancel/item-not-found: no active certificate named "phone"`, func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", w.st.ComponentJID, nameOnlyXML("revoke", "phone"))
	})

	// --- Plugin protocol and delegation forged by a user --------------------
	horatioFP := storage.FingerprintOf(w.horatioCert.DER).String()
	add("forged", "plugin lookup IQ sent by a user", "error auth/forbidden: only a served server domain may use this protocol", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "get", w.st.ComponentJID, protoXML(pluginproto.Lookup{Authzid: "horatio@" + domain, Cert: w.horatioCert.DER}))
	})
	add("forged", "plugin session notice sent by a user", "error auth/forbidden: only a served server domain may use this protocol", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", w.st.ComponentJID, protoXML(pluginproto.Session{Event: pluginproto.EventBound, JID: "horatio@" + domain + "/evil", Fingerprint: horatioFP}))
	})
	add("forged", "delegation wrapper sent by a user", "error auth/forbidden: only a served server domain may delegate requests", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", w.st.ComponentJID, "<delegation xmlns='"+nsDelegation+"'><forwarded xmlns='"+nsForward+"'><iq xmlns='jabber:client' type='set' id='in1' from='horatio@"+domain+"/phone'>"+nameOnlyXML("revoke", "phone")+"</iq></forwarded></delegation>")
	})
	add("forged", "revocation notice forged by a user (to the server)", "error auth/forbidden", func(t *testing.T) string {
		out := w.iqAs(t, "hamlet", "set", domain, protoXML(pluginproto.Revoked{JID: "horatio@" + domain, Fingerprint: horatioFP}))
		// horatio's certificate session must still be open.
		if n, err := w.horatioLive.IQ("get", "", itemsXML()); err != nil || n.Outcome() != "result" {
			t.Errorf("horatio's session after the forged notice: %v %v", n.Outcome(), err)
		}
		return out
	})
	add("forged", "revocation notice forged by a user (to the component)", "error auth/forbidden: only a served server domain may use this protocol", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", w.st.ComponentJID, protoXML(pluginproto.Revoked{JID: "horatio@" + domain, Fingerprint: horatioFP}))
	})
	add("forged", "session list asked by a user", "error auth/forbidden", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "get", domain, protoXML(pluginproto.SessionsQuery{}))
	})
	add("forged", "cache announcement forged by a user (to the server)", "error auth/forbidden", func(t *testing.T) string {
		out := w.iqAs(t, "hamlet", "get", domain, protoXML(pluginproto.SessionsQuery{Lookup: pluginproto.LookupByFingerprint, CacheTTL: 86400}))
		// The plugin still talks to the real component: horatio's list works.
		if n, err := w.horatioLive.IQ("get", "", itemsXML()); err != nil || n.Outcome() != "result" {
			t.Errorf("horatio's session after the forged announcement: %v %v", n.Outcome(), err)
		}
		return out
	})
	add("forged", "change notice forged by a user (to the server)", "error auth/forbidden", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "set", domain, protoXML(pluginproto.Changed{JID: "horatio@" + domain}))
	})
	add("forged", "plugin lookup by fingerprint sent by a user", "error auth/forbidden: only a served server domain may use this protocol", func(t *testing.T) string {
		return w.iqAs(t, "hamlet", "get", w.st.ComponentJID, protoXML(pluginproto.Lookup{Fingerprint: horatioFP}))
	})

	// --- Hostile input from the server side (a buggy or compromised module) --
	wrap := func(inner string) string {
		return "<iq type='set' from='" + domain + "' to='" + w.st.ComponentJID + "'><delegation xmlns='" + nsDelegation + "'><forwarded xmlns='" + nsForward + "'>" + inner + "</forwarded></delegation></iq>"
	}
	forged := func(name, raw, want string) {
		add("server", name, want, func(t *testing.T) string { return w.forge(t, raw) })
	}
	forged("delegation wrapper whose inner from is another domain",
		wrap("<iq xmlns='jabber:client' type='set' id='in1' from='horatio@elsinore.lit/x'>"+nameOnlyXML("revoke", "phone")+"</iq>"),
		"inner error auth/forbidden: requests must come from an account of "+domain)
	forged("delegation wrapper whose inner from is the server",
		wrap("<iq xmlns='jabber:client' type='get' id='in1' from='"+domain+"'>"+itemsXML()+"</iq>"),
		"inner error auth/forbidden: requests must come from an account of "+domain)
	forged("delegation wrapper without forwarded", "<iq type='set' from='"+domain+"' to='"+w.st.ComponentJID+"'><delegation xmlns='"+nsDelegation+"'/></iq>",
		"error modify/bad-request: <delegation/> has no <forwarded/> child")
	forged("forwarded IQ without id", wrap("<iq xmlns='jabber:client' type='get' from='hamlet@"+domain+"/x'>"+itemsXML()+"</iq>"),
		"error modify/bad-request: the forwarded IQ has no id")
	forged("forwarded IQ without from", wrap("<iq xmlns='jabber:client' type='get' id='in1'>"+itemsXML()+"</iq>"),
		"error modify/bad-request: the forwarded IQ has no from")
	forged("forwarded IQ of type result", wrap("<iq xmlns='jabber:client' type='result' id='in1' from='hamlet@"+domain+"/x'>"+itemsXML()+"</iq>"),
		`error modify/bad-request: the forwarded IQ has type "result", want get or set`)
	lookup := func(attrs, inner string) string {
		return "<iq type='get' from='" + domain + "' to='" + w.st.ComponentJID + "'><lookup xmlns='" + nsPlugin + "'" + attrs + ">" + inner + "</lookup></iq>"
	}
	forged("lookup with two certificates", lookup("", "<x509cert>"+b64(w.hamletCert.DER)+"</x509cert><x509cert>"+b64(w.horatioCert.DER)+"</x509cert>"),
		"error modify/bad-request: <lookup/> has more than one <x509cert/>")
	forged("lookup with bad base64", lookup("", "<x509cert>!!!</x509cert>"), "error modify/bad-request: <x509cert/> is not valid base64")
	forged("lookup over 64 KiB", lookup("", "<x509cert>"+strings.Repeat("QUFB", 17000)+"</x509cert>"), "error modify/bad-request: <x509cert/> is too large")
	forged("lookup with an authzid of another domain", lookup(" authzid='horatio@elsinore.lit'", "<x509cert>"+b64(w.horatioCert.DER)+"</x509cert>"),
		"error auth/not-authorized+invalid-authzid: "+textAuthzid)
	forged("session notice for another domain", "<iq type='set' from='"+domain+"' to='"+w.st.ComponentJID+"'>"+protoXML(pluginproto.Session{Event: pluginproto.EventBound, JID: "horatio@elsinore.lit/x", Fingerprint: horatioFP})+"</iq>",
		"error auth/forbidden: the session is not on "+domain)

	// --- Another component on the same server, and the component link -----
	rogue := func(name, to, typ, payload, want string, after func(t *testing.T)) {
		add("component", name, want, func(t *testing.T) string {
			c, err := w.st.DialRawComponent(ctxT(t), w.st.RogueJID, w.st.RogueSecret)
			if err != nil {
				t.Fatalf("rogue component: %v", err)
			}
			defer c.Close()
			// ejabberd requires a component's stanzas to carry their from
			// (Prosody fills it in).
			id := c.NewID()
			if err := c.Send("<iq type='" + typ + "' id='" + id + "' from='" + w.st.RogueJID + "' to='" + to + "'>" + payload + "</iq>"); err != nil {
				t.Fatal(err)
			}
			n, err := c.Await(id, stepTimeout)
			out := ""
			var se *stacktest.StreamError
			switch {
			case errors.As(err, &se):
				out = se.Node.Outcome()
			case err != nil:
				t.Fatal(err)
			default:
				out = n.Outcome()
			}
			if after != nil {
				after(t)
			}
			return out
		})
	}
	horatioAlive := func(t *testing.T) {
		if n, err := w.horatioLive.IQ("get", "", itemsXML()); err != nil || n.Outcome() != "result" {
			t.Errorf("horatio's session: %v %v", n, err)
		}
	}
	rogue("plugin lookup from another component", w.st.ComponentJID, "get",
		protoXML(pluginproto.Lookup{Cert: w.horatioCert.DER}),
		"error auth/forbidden: only a served server domain may use this protocol", nil)
	rogue("delegation wrapper from another component", w.st.ComponentJID, "set",
		"<delegation xmlns='"+nsDelegation+"'><forwarded xmlns='"+nsForward+"'><iq xmlns='jabber:client' type='set' id='in1' from='horatio@"+domain+"/phone'>"+nameOnlyXML("revoke", "phone")+"</iq></forwarded></delegation>",
		"error auth/forbidden: only a served server domain may delegate requests", nil)
	rogue("revocation notice from another component", domain, "set",
		protoXML(pluginproto.Revoked{JID: "horatio@" + domain, Fingerprint: horatioFP}),
		"error auth/forbidden", horatioAlive)
	rogue("session list asked by another component", domain, "get", protoXML(pluginproto.SessionsQuery{}), "error auth/forbidden", nil)
	rogue("cache announcement from another component", domain, "get", protoXML(pluginproto.SessionsQuery{Lookup: pluginproto.LookupByFingerprint, CacheTTL: 86400}), "error auth/forbidden", horatioAlive)
	rogue("change notice from another component", domain, "set", protoXML(pluginproto.Changed{JID: "horatio@" + domain}), "error auth/forbidden", nil)
	add("component", "another component claims the server's domain as from", "stream-error invalid-from: Component tried to send from address <"+domain+"> which is not in domain <"+w.st.RogueJID+">", func(t *testing.T) string {
		c, err := w.st.DialRawComponent(ctxT(t), w.st.RogueJID, w.st.RogueSecret)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Send("<iq type='set' id='spoof' from='" + domain + "' to='" + w.st.ComponentJID + "'><delegation xmlns='" + nsDelegation + "'><forwarded xmlns='" + nsForward + "'><iq xmlns='jabber:client' type='set' id='in1' from='horatio@" + domain + "/phone'>" + nameOnlyXML("revoke", "phone") + "</iq></forwarded></delegation></iq>"); err != nil {
			t.Fatal(err)
		}
		n, err := c.WaitClosed(stepTimeout)
		if err != nil || n == nil {
			t.Fatalf("waiting for the stream error: %v %v", n, err)
		}
		return n.Outcome()
	})
	handshake := func(name, secret, want string) {
		add("component", name, want, func(t *testing.T) string {
			c, err := w.st.DialRawComponent(ctxT(t), w.st.ComponentJID, secret)
			var se *stacktest.StreamError
			if errors.As(err, &se) {
				return se.Node.Outcome()
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// ejabberd acknowledges the handshake before mod_saslcert
			// can refuse the connection (component_connected).
			if n, err := c.WaitClosed(3 * time.Second); err == nil && n != nil {
				return "handshake accepted, then " + n.Outcome()
			}
			return "handshake accepted"
		})
	}
	handshake("connect as the component with a wrong secret", "wrong-secret", "stream-error not-authorized: Given token does not match calculated token")
	handshake("a second connection as the component (with the secret)", w.st.S.ComponentSecret(), "stream-error conflict: Component already connected")

	// --- SASL EXTERNAL -----------------------------------------------------
	sasl := func(name string, cert func() *certtest.Cert, body, want string) {
		add("sasl", name, want, func(t *testing.T) string { return w.sasl(t, cert(), body) })
	}
	good := func() *certtest.Cert { return w.hamletCert }
	sasl("bad base64", good, "!!!not-base64", "failure incorrect-encoding")
	sasl("base64 without padding", good, "aGFtbGV0IQ", "failure incorrect-encoding")
	// emptyAuthThen sends <auth mechanism='EXTERNAL'/> with no data, then
	// second, and returns both outcomes.
	emptyAuthThen := func(second string) func(t *testing.T) string {
		return func(t *testing.T) string {
			c, err := w.st.DialRaw(ctxT(t), w.hamletCert)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			n, err := c.Auth("EXTERNAL", "")
			if err != nil {
				t.Fatal(err)
			}
			first := n.Outcome()
			if err := c.Send(second); err != nil {
				t.Fatal(err)
			}
			n, err = c.Next(stepTimeout)
			if err != nil {
				t.Fatal(err)
			}
			return first + "; " + n.Outcome()
		}
	}
	add("sasl", "empty body (challenge), then abort", "challenge =; failure aborted",
		emptyAuthThen("<abort xmlns='"+stacktest.NSSASL+"'/>"))
	add("sasl", "empty body (challenge), then bad base64", "challenge =; failure incorrect-encoding",
		emptyAuthThen("<response xmlns='"+stacktest.NSSASL+"'>***</response>"))
	sasl("10 KiB authzid", good, authzid(strings.Repeat("h", 10<<10)), "stream-error policy-violation: XML stanza is too big")
	sasl("3072-byte authzid", good, authzid(strings.Repeat("h", 3072)), "failure invalid-authzid: The authorization identity is too long")
	// Issue 10.2: the plugin's old trim was quadratic in a run of whitespace
	// (~0.4 s of Prosody's only thread for this one): now refused before any
	// pattern runs on it.
	sasl("9,800 spaces inside the SASL data", good, "a"+strings.Repeat(" ", 9800)+"b", "failure malformed-request: The SASL data is too long")
	sasl("authzid with a control character", good, authzid(hamlet+"\x01"), "failure invalid-authzid")
	sasl("authzid that is not UTF-8", good, authzid("hamlet\xff@"+domain), "failure invalid-authzid")
	sasl("authzid of another account", good, authzid("horatio@"+domain), "failure invalid-authzid: "+textAuthzid)
	sasl("authzid of another domain", good, authzid("hamlet@elsinore.lit"), "failure invalid-authzid: "+textAuthzid)
	sasl("full-JID authzid", good, authzid(hamlet+"/laptop"), "failure invalid-authzid: "+textAuthzid)
	sasl("authzid that is not a JID", good, authzid("hamlet@@"+domain), "failure invalid-authzid: "+textAuthzid)
	sasl("certificate never uploaded", func() *certtest.Cert {
		return w.newCert(t, certtest.Options{XMPPAddrs: []string{hamlet}})
	}, "=", "failure not-authorized: "+textNotRegistered)
	sasl("another account's certificate with the victim as authzid", func() *certtest.Cert { return w.horatioCert }, authzid(hamlet), "failure invalid-authzid: "+textAuthzid)
	sasl("disabled certificate", func() *certtest.Cert { return w.disabled }, "=", "failure not-authorized: "+textNotRegistered)
	sasl("revoked certificate", func() *certtest.Cert { return w.revoked }, "=", "failure not-authorized: "+textNotRegistered)
	sasl("certificate expired since upload", func() *certtest.Cert { return w.expired }, "=", "failure credentials-expired: "+textExpired)
	sasl("no client certificate", func() *certtest.Cert { return nil }, "=", "failure not-authorized: no client certificate was presented")
	// On ejabberd: what is Prosody's own (or its test module's) is skipped
	// with the reason; where ejabberd words the same refusal otherwise, its
	// exact answer is stated.
	const (
		whyForge  = "needs mod_stacktest_forge, a Prosody test module (ejabberd has no forge module)"
		whySASL   = "ejabberd parses SASL EXTERNAL and checks the authzid and the chain itself (xmpp_stream_pkix) before mod_saslcert is asked, with its own conditions and texts"
		whyParser = "the stream error's text comes from the server's XML parser"
	)
	ejabberdAnswers := map[string]string{
		"forged/revocation notice forged by a user (to the server)":        "error auth/forbidden: only the saslcert component may send this",
		"forged/session list asked by a user":                              "error auth/forbidden: only the saslcert component may send this",
		"forged/cache announcement forged by a user (to the server)":       "error auth/forbidden: only the saslcert component may send this",
		"forged/change notice forged by a user (to the server)":            "error auth/forbidden: only the saslcert component may send this",
		"component/revocation notice from another component":               "error auth/forbidden: only the saslcert component may send this",
		"component/session list asked by another component":                "error auth/forbidden: only the saslcert component may send this",
		"component/cache announcement from another component":              "error auth/forbidden: only the saslcert component may send this",
		"component/change notice from another component":                   "error auth/forbidden: only the saslcert component may send this",
		"component/another component claims the server's domain as from":   "stream-error invalid-from: Improper domain part of 'from' attribute",
		"component/connect as the component with a wrong secret":           "stream-error not-authorized",
		"component/a second connection as the component (with the secret)": "handshake accepted, then stream-error conflict: Component already connected",
	}
	prosodyOnly := map[string]string{
		"payload/XML not well-formed":                 whyParser,
		"name/name with a C0 control (not XML)":       whyParser,
		"payload/stanza over Prosody's 256 KiB limit": "Prosody's stanza size limit; the test ejabberd sets none (the component refuses the payload itself)",
	}
	for i := range cs {
		key := cs[i].cat + "/" + cs[i].name
		cs[i].ejabberd = ejabberdAnswers[key]
		cs[i].prosodyOnly = prosodyOnly[key]
		switch {
		case cs[i].cat == "server":
			cs[i].prosodyOnly = whyForge
		case cs[i].cat == "sasl" && cs[i].name != "disabled certificate" && cs[i].name != "revoked certificate" && cs[i].name != "certificate never uploaded":
			cs[i].prosodyOnly = whySASL
		}
	}
	return cs
}
