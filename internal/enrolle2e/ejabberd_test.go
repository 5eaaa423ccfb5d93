package enrolle2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/ejabberdtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// ejabberdStack is a real ejabberd 23.01 with mod_saslcert (through the
// stacktest server seam) and the real "saslcert serve" with the embedded CA.
// c2s_cafile holds the embedded CA's root and issuing CA, and a test CA
// (other) for certificates the embedded CA would never issue.
type ejabberdStack struct {
	*stack
	other  *certtest.Cert // a second CA in c2s_cafile
	config string         // serve's config
	caCert *x509.Certificate
}

func newEjabberdStack(t *testing.T) *ejabberdStack {
	t.Helper()
	return newEjabberdStackWith(t, nil)
}

// newEjabberdStackWith is newEjabberdStack with tweak applied to the test
// ejabberd's options.
func newEjabberdStackWith(t *testing.T, tweak func(*ejabberdtest.Options)) *ejabberdStack {
	t.Helper()
	if testing.Short() {
		t.Skip("full-stack integration test (-short)")
	}
	ejabberdtest.Skip(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	t.Logf("saslcert ca init:\n%s", indent(saslcertCmd(t, "ca", "init", "--data-dir", data)))
	other := certtest.NewCA(t, "saslcert test CA (not the embedded one)")
	var cas bytes.Buffer
	for _, f := range []string{"root.crt", "ca.crt"} {
		b, err := os.ReadFile(filepath.Join(data, "ca", f))
		if err != nil {
			t.Fatal(err)
		}
		cas.Write(b)
	}
	cas.Write(other.CertPEM())
	caFile := filepath.Join(dir, "c2s_cafile.pem")
	if err := os.WriteFile(caFile, cas.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	s := stacktest.Start(t, stacktest.Options{
		PluginTimeout: 5 * time.Second,
		DataDir:       data,
		NoComponent:   true,
		StartServer: func(tb testing.TB, o stacktest.ServerOptions) stacktest.Server {
			if tweak == nil {
				return stacktest.StartEjabberd(tb, o)
			}
			eo := ejabberdtest.Options{Domain: o.Domain, CAFile: o.ClientCAFile, Timeout: o.PluginTimeout}
			tweak(&eo)
			return stacktest.EjabberdServer(ejabberdtest.Start(tb, eo))
		},
		ClientCAFile: caFile,
	})
	st := &ejabberdStack{stack: &stack{Stack: s, Dir: dir}, other: other}
	st.config = st.baseConfig(t, fmt.Sprintf("ca = \"embedded\"\n\n[policy.%q]\nlifetime = \"48h\"\n", s.Domain))
	st.startServe(t, st.config)
	st.caCert = readPEMCert(t, filepath.Join(data, "ca", "ca.crt"))
	return st
}

// issueOther is a certificate of the test CA (in c2s_cafile, so ejabberd
// lets it reach SASL EXTERNAL) with o's names and validity.
func (st *ejabberdStack) issueOther(t *testing.T, o certtest.Options) *certtest.Cert {
	t.Helper()
	o.Parent = st.other
	return stacktest.NewCert(t, o)
}

// chainOf is c and its issuer's certificate.
func chainOf(c *certtest.Cert, issuer *x509.Certificate) [][]byte {
	return [][]byte{c.DER, issuer.Raw}
}

// TestEjabberd is the user's path on ejabberd 23.01 with mod_saslcert, and
// what the module must refuse: a self-signed upload through the forwarded
// XEP-0355 wrapper (it cannot log in: ejabberd checks the chain against
// c2s_cafile), "Request a certificate" naming it, SASL EXTERNAL with the
// issued certificate (our client and slixmpp), the resource a full-JID
// certificate forces, a revoke closing the live session, disabled, unknown,
// expired and no-xmppAddr certificates refused, the component away ->
// temporary-auth-failure, and the component reconnecting after an ejabberd
// restart.
func TestEjabberd(t *testing.T) {
	st := newEjabberdStack(t)
	comp := jid.MustParse(st.S.ComponentJID())
	alice := st.Register(t, "alice")
	pw := st.passwordLogin(t, "alice")
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// Delegated upload: no 'to', forwarded by mod_saslcert with its stamp.
	ssKey := newKey(t)
	now := time.Now()
	ss, err := enroll.SelfSigned(ssKey, alice, now.Add(-time.Minute), now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if err := xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "phone (self-signed)", ss, false); err != nil {
		t.Fatalf("XEP-0257 append through ejabberd: %v", err)
	}
	if names := stacktest.ItemNames(stacktest.Items(t, pw)); !slices.Equal(names, []string{"phone (self-signed)"}) {
		t.Fatalf("items after the upload: %v", names)
	}
	t.Log("uploaded a self-signed certificate with XEP-0257 (no 'to': forwarded by mod_saslcert) and listed it")
	// Presented whatever CAs ejabberd names (Go's TLS client would leave it
	// out, and ejabberd would refuse for want of a certificate instead).
	sc := dialPresenting(t, st.S, tlsCert([][]byte{ss}, ssKey))
	if o := <-authExternal(sc); !outcomeIs(o, "failure not-authorized") || strings.Contains(o, "Failed to get peer certificate") {
		t.Fatalf("EXTERNAL with the self-signed certificate: %s; want failure not-authorized for its chain", o)
	} else {
		t.Logf("the self-signed certificate cannot log in on ejabberd (chain check against c2s_cafile): %s", o)
	}
	sc.Close()

	// Ad-hoc enrollment naming the uploaded certificate.
	res, err := requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldSelfSigned: "phone (self-signed)", enrollcmd.FieldName: "phone"})
	if err != nil {
		t.Fatalf("Request a certificate naming the upload: %v", err)
	}
	chainText, _ := res.Form.value(enrollcmd.FieldChain)
	chain := pemChain(t, chainText)
	ext, err := st.certLogin(t, alice, tlsCert(chain, ssKey))
	if err != nil {
		t.Fatalf("SASL EXTERNAL with the issued certificate: %v", err)
	}
	if !ext.LocalAddr().Bare().Equal(alice) {
		t.Fatalf("bound as %s, want %s/…", ext.LocalAddr(), alice)
	}
	t.Logf("login with the issued certificate: SASL EXTERNAL, bound as %s", ext.LocalAddr())
	// mod_saslcert told the component of the bound session: <items/> lists
	// its resource under the certificate (the notice travels on its own, so
	// wait for it).
	res0 := ext.LocalAddr().Resourcepart()
	for deadline := time.Now().Add(eventTimeout); ; time.Sleep(100 * time.Millisecond) {
		it := stacktest.Items(t, pw)
		i := slices.IndexFunc(it, func(it xep0257.Item) bool { return it.Name == "phone" })
		if i >= 0 && slices.Contains(it[i].Users, res0) {
			t.Logf("<items/> lists the session under the certificate: users %v", it[i].Users)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("<items/> does not list the bound session %s: %+v", res0, it)
		}
	}

	t.Run("slixmpp", func(t *testing.T) {
		py := slixPythonEjabberd(t)
		dir := t.TempDir()
		certFile, keyFile, caFile := filepath.Join(dir, "c.crt"), filepath.Join(dir, "c.key"), filepath.Join(dir, "s.crt")
		writePEM(t, certFile, "CERTIFICATE", chain...)
		writePEM(t, keyFile, "PRIVATE KEY", pkcs8(t, ssKey))
		writePEM(t, caFile, "CERTIFICATE", st.S.Cert().Raw)
		stdout, stderr, code := runSlixClient(t, py, "--addr", st.S.C2SAddr(), "--jid", alice.String(),
			"--cert", certFile, "--key", keyFile, "--ca", caFile, "--external-only")
		if code != 0 || !strings.Contains(stdout, "slix: external-login bound="+alice.String()+"/") || !strings.Contains(stdout, "mechanism=EXTERNAL") {
			t.Fatalf("slixmpp EXTERNAL on ejabberd: status %d\n%s%s", code, stdout, stderr)
		}
	})

	t.Run("forced-resource", func(t *testing.T) {
		c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{"alice@example.org/tablet"}})
		st.AddCert(t, alice.String(), "tablet", c, false)
		s, err := st.certLogin(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key))
		if err != nil {
			t.Fatalf("login with a full-JID certificate: %v", err)
		}
		if s.LocalAddr().String() != "alice@example.org/tablet" {
			t.Fatalf("bound as %s; want the forced alice@example.org/tablet", s.LocalAddr())
		}
		t.Logf("a certificate for alice@example.org/tablet binds %s whatever the client asked", s.LocalAddr())
	})

	t.Run("no-xmppaddr", func(t *testing.T) {
		// ejabberd alone would let this certificate log in as any user of
		// the domain (xmpp_stream_pkix: "the certificate contains no JIDs,
		// we accept this since the certificate is verified").
		// It needs the authzid: without one, ejabberd finds no account.
		c := st.issueOther(t, certtest.Options{CommonName: "alice"})
		cctx, cancel := deadline()
		defer cancel()
		s, err := st.Dial(cctx, xmppclient.Config{JID: alice, Cert: tlsCert(chainOf(c, st.other.Cert), c.Key), Authzid: alice.String()})
		if err == nil {
			s.Close()
			t.Fatalf("a certificate without xmppAddr logged in as %s", s.LocalAddr())
		}
		var ae *xmppclient.AuthError
		if !errors.As(err, &ae) || ae.Condition != "not-authorized" || ae.Text == "Certificate JID mismatch" {
			t.Fatalf("login with a certificate without xmppAddr and authzid %s: %v; want mod_saslcert's not-authorized", alice, err)
		}
		t.Logf("a CA-issued certificate without xmppAddr, authzid %s: refused <%s/> %q", alice, ae.Condition, ae.Text)
	})

	t.Run("unknown", func(t *testing.T) {
		c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
		ae := st.mustRefuse(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key), "not-authorized")
		t.Logf("a CA-issued certificate saslcert does not know: refused <%s/> %q", ae.Condition, ae.Text)
	})

	t.Run("expired", func(t *testing.T) {
		c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{alice.String()},
			NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
		ae := st.mustRefuse(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key), "not-authorized")
		t.Logf("an expired certificate: refused <%s/> %q", ae.Condition, ae.Text)
	})

	t.Run("disabled", func(t *testing.T) {
		c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
		st.AddCert(t, alice.String(), "kiosk", c, false)
		s, err := st.certLogin(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key))
		if err != nil {
			t.Fatalf("login before the disable: %v", err)
		}
		s.Close()
		if err := xep0257.DisableCert(ctx, pw.Session, jid.JID{}, "kiosk"); err != nil {
			t.Fatalf("XEP-0257 disable: %v", err)
		}
		ae := st.mustRefuse(t, alice, tlsCert(chainOf(c, st.other.Cert), c.Key), "not-authorized")
		t.Logf("after <disable/>: refused <%s/> %q (the cached answer was forgotten at <changed/>)", ae.Condition, ae.Text)
	})

	t.Run("account-removed", func(t *testing.T) {
		bob := st.Register(t, "bob")
		c := st.issueOther(t, certtest.Options{XMPPAddrs: []string{bob.String()}})
		st.AddCert(t, bob.String(), "bob's", c, false)
		if out, err := st.S.DeleteAccount(bob.String()); err != nil {
			t.Fatalf("ejabberdctl unregister: %v\n%s", err, out)
		}
		for deadline := time.Now().Add(eventTimeout); st.storedRecord(t, c.DER).State != storage.StateRevoked; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("bob's certificate is %s %v after ejabberdctl unregister; want revoked", st.storedRecord(t, c.DER).State, eventTimeout)
			}
		}
		t.Log("ejabberdctl unregister bob: mod_saslcert sent <account-deleted/> and the component revoked bob's certificate")
	})

	// Revoke closes the live session of the issued certificate.
	if err := xep0257.RevokeCert(ctx, pw.Session, jid.JID{}, "phone"); err != nil {
		t.Fatalf("XEP-0257 revoke: %v", err)
	}
	closeErr := waitClosed(t, ext)
	t.Logf("after <revoke/>: the live EXTERNAL session was closed: %v", closeErr)
	ae := st.mustRefuse(t, alice, tlsCert(chain, ssKey), "not-authorized")
	t.Logf("the next login with the revoked certificate: refused <%s/> %q", ae.Condition, ae.Text)

	// A fresh certificate for the remaining steps.
	key := newKey(t)
	res, err = requestCert(t, pw.Session, comp, map[string]string{enrollcmd.FieldCSR: csrPEM(t, key, "", ""), enrollcmd.FieldName: "laptop"})
	if err != nil {
		t.Fatalf("Request a certificate with a CSR: %v", err)
	}
	chainText, _ = res.Form.value(enrollcmd.FieldChain)
	laptop := tlsCert(pemChain(t, chainText), key)

	// A certificate of an account ejabberd does not have (stored behind
	// the component's back): the reconciliation after the next connect asks
	// mod_saslcert, which answers exists='false' (Mnesia confirms it).
	ghost := st.issueOther(t, certtest.Options{XMPPAddrs: []string{"ghost@" + st.Domain}})
	st.AddCert(t, "ghost@"+st.Domain, "ghost's", ghost, false)

	// The component away: temporary-auth-failure, never success.
	if err := st.Comp().Stop(); err != nil {
		t.Fatal(err)
	}
	ae = st.mustRefuse(t, alice, laptop, "temporary-auth-failure")
	t.Logf("with the component stopped: refused <%s/> %q", ae.Condition, ae.Text)
	st.startServe(t, st.config)
	if _, err := st.certLogin(t, alice, laptop); err != nil {
		t.Fatalf("login after the component came back: %v", err)
	}
	for deadline := time.Now().Add(eventTimeout); st.storedRecord(t, ghost.DER).State != storage.StateRevoked; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the certificate of an account ejabberd does not have is still %s after the reconciliation", st.storedRecord(t, ghost.DER).State)
		}
	}
	t.Log("the reconciliation after the reconnect revoked the certificate of ghost@example.org (mod_saslcert: exists='false')")

	// ejabberd restarts: the component reconnects by itself.
	if err := st.RestartProsody(t); err != nil {
		t.Fatalf("after an ejabberd restart: %v", err)
	}
	if _, err := st.certLogin(t, alice, laptop); err != nil {
		t.Fatalf("login after the ejabberd restart: %v", err)
	}
	t.Log("ejabberd restarted; the component reconnected and certificate logins work again")
}

// slixPythonEjabberd is a python3 that imports slixmpp (skip, or fail with
// SASLCERT_REQUIRE_EJABBERD).
func slixPythonEjabberd(t *testing.T) string {
	t.Helper()
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import slixmpp").Run() == nil {
			return py
		}
	}
	if os.Getenv(ejabberdtest.RequireEnv) != "" {
		t.Fatalf("no python3 with slixmpp and %s is set", ejabberdtest.RequireEnv)
	}
	t.Skip("no python3 with slixmpp")
	return ""
}

// runSlixClient runs internal/e2e/testdata/slix_client.py.
func runSlixClient(t *testing.T, py string, args ...string) (stdout, stderr string, status int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	args = append([]string{filepath.Join("..", "e2e", "testdata", "slix_client.py"), "--timeout", "90"}, args...)
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	t.Logf("slix_client.py %s\nstdout:\n%sstderr:\n%s", strings.Join(args[1:], " "), out.String(), errOut.String())
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errOut.String(), 0
	case errors.As(err, &ee) && ee.Exited():
		return out.String(), errOut.String(), ee.ExitCode()
	}
	t.Fatalf("slix_client.py: %v", err)
	return "", "", -1
}

func writePEM(t *testing.T, path, typ string, ders ...[]byte) {
	t.Helper()
	var b bytes.Buffer
	for _, d := range ders {
		b.Write(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d}))
	}
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func pkcs8(t *testing.T, key any) []byte {
	t.Helper()
	b, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
