package enrolle2e

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
	"github.com/saslcert/saslcert/xep0257"
)

// Management rights travel with each request (the plugin's auth stamp,
// docs/PLUGIN-PROTOCOL.md), so they hold for a request pipelined behind
// bind (before the plugin's session notice reaches the component) and right
// after the component reconnects, on every management path.

// enrollIQ is a one-stage "Request a certificate" (the form with the first
// execute) for a fresh key, addressed to the component, with extra (raw
// XML, may be "") after the command.
func enrollIQ(t *testing.T, id string, comp jid.JID, extra string) string {
	t.Helper()
	var values strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(csrPEM(t, newKey(t), "", "")), "\n") {
		values.WriteString("<value>" + stacktest.Escape(line) + "</value>")
	}
	return fmt.Sprintf(`<iq type='set' id='%s' to='%s'><command xmlns='%s' node='%s' action='execute'>`+
		`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>%s</value></field>`+
		`<field var='%s'>%s</field></x></command>%s</iq>`,
		id, comp, enrollcmd.NSCommands, enrollcmd.NodeEnroll, enrollcmd.FormType, enrollcmd.FieldCSR, values.String(), extra)
}

// appendIQ is an XEP-0257 <append/> of der as name, without 'to' (as
// unmodified clients send it).
func appendIQ(id, name string, der []byte) string {
	return fmt.Sprintf(`<iq type='set' id='%s'><append xmlns='%s'><name>%s</name><x509cert>%s</x509cert></append></iq>`,
		id, xep0257.NS, name, base64.StdEncoding.EncodeToString(der))
}

// wantForbidden fails t unless n is an IQ error auth/forbidden whose text
// contains text.
func wantForbidden(t *testing.T, n *stacktest.Node, text string) {
	t.Helper()
	e := n.Child("", "error")
	if n.Attr("type") != "error" || e == nil || e.Attr("type") != "auth" || e.Child(stacktest.NSStanzas, "forbidden") == nil {
		t.Fatalf("got %s; want auth/forbidden", n)
	}
	if tx := e.Child(stacktest.NSStanzas, "text"); tx == nil || !strings.Contains(tx.Text, text) {
		t.Fatalf("got %s; want a text with %q", n, text)
	}
	t.Logf("refused as it should be: %s", e.Child(stacktest.NSStanzas, "text").Text)
}

// rawCertLogin dials presenting cert and logs in with EXTERNAL (not bound).
func (st *stack) rawCertLogin(t *testing.T, cert *certtest.Cert) *stacktest.RawClient {
	t.Helper()
	ctx, cancel := deadline()
	defer cancel()
	c, err := st.DialRaw(ctx, cert)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.AuthExternal(""); err != nil {
		t.Fatalf("EXTERNAL: %v", err)
	}
	return c
}

// TestEnrollRightsPipelined (issues 10.3 and 10.4): a session that logged in
// with a <no-cert-management/> certificate, or with a trusted-roots
// certificate (never stored), obtains nothing by sending its request in the
// same write as its bind, nor right after the component reconnected; a
// stamp a client forges is removed by the plugin.
func TestEnrollRightsPipelined(t *testing.T) {
	st := newStack(t)
	st.initCA(t)
	config := st.baseConfig(t, fmt.Sprintf(`
ca = "embedded"

[policy.%q]
trusted_roots = ["embedded"]
`, st.S.Domain()))
	serve := st.startServe(t, config)
	comp := jid.MustParse(st.S.ComponentJID())
	alice := st.Register(t, "alice")
	pw := st.passwordLogin(t, "alice")
	ctx, cancel := deadline()
	defer cancel()
	kiosk := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{alice.String()}})
	if err := xep0257.AppendCert(ctx, pw.Session, jid.JID{}, "kiosk", kiosk.DER, true); err != nil {
		t.Fatal(err)
	}
	noMgmt := "may not manage certificates"

	t.Run("no-cert-management/enroll-pipelined-behind-bind", func(t *testing.T) {
		for i := range 3 {
			c := st.rawCertLogin(t, kiosk)
			id := fmt.Sprint("enroll-", i)
			if _, err := c.BindThen("", enrollIQ(t, id, comp, "")); err != nil {
				t.Fatal(err)
			}
			n, err := c.Await(id, stacktest.RawTimeout)
			if err != nil {
				t.Fatal(err)
			}
			wantForbidden(t, n, noMgmt)
		}
	})

	// A client cannot put a stamp where the component reads it: Prosody
	// refuses an IQ get or set from a client with more than one child
	// (and the plugin removes top-level stamps from clients' stanzas
	// anyway); one inside the payload is not a stamp.
	forged := func(jidStr, id, method, manage string) string {
		return fmt.Sprintf("<auth xmlns='urn:x-saslcert:plugin:0' jid='%s' id='%s' method='%s' manage='%s' mac='%s'/>",
			jidStr, id, method, manage, strings.Repeat("0", 64))
	}
	t.Run("no-cert-management/forged-stamp-next-to-the-payload", func(t *testing.T) {
		c := st.rawCertLogin(t, kiosk)
		if _, err := c.BindThen("x", enrollIQ(t, "forged", comp, forged(alice.String()+"/x", "forged", "other", "true"))); err != nil {
			t.Fatal(err)
		}
		n, err := c.Await("forged", stacktest.RawTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if n.Attr("type") != "error" {
			t.Fatalf("got %s; want an error", n)
		}
		t.Logf("refused: %s", n)
	})
	t.Run("no-cert-management/forged-stamp-in-the-payload", func(t *testing.T) {
		c := st.rawCertLogin(t, kiosk)
		iq := strings.Replace(enrollIQ(t, "forged2", comp, ""), "</command>", forged(alice.String()+"/y", "forged2", "other", "true")+"</command>", 1)
		if _, err := c.BindThen("y", iq); err != nil {
			t.Fatal(err)
		}
		n, err := c.Await("forged2", stacktest.RawTimeout)
		if err != nil {
			t.Fatal(err)
		}
		wantForbidden(t, n, noMgmt)
	})

	// A kiosk session that is live across a reconnect of the component
	// (a new process: it knows no session until the plugin answers its
	// <sessions/> query).
	live := st.rawCertLogin(t, kiosk)
	if _, err := live.Bind(""); err != nil {
		t.Fatal(err)
	}
	if err := serve.Stop(); err != nil {
		t.Fatal(err)
	}
	st.startServe(t, config)
	t.Run("no-cert-management/right-after-a-component-reconnect", func(t *testing.T) {
		for i := range 3 {
			id := fmt.Sprint("after-reconnect-", i)
			if err := live.Send(enrollIQ(t, id, comp, "")); err != nil {
				t.Fatal(err)
			}
			n, err := live.Await(id, stacktest.RawTimeout)
			if err != nil {
				t.Fatal(err)
			}
			wantForbidden(t, n, noMgmt)
		}
	})

	t.Run("password/stamp-in-the-payload-is-ignored", func(t *testing.T) {
		ctx, cancel := deadline()
		defer cancel()
		c, err := st.RawLogin(ctx, "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		iq := strings.Replace(enrollIQ(t, "pw", comp, ""), "</command>", forged(c.Bound, "pw", "certificate", "false")+"</command>", 1)
		if err := c.Send(iq); err != nil {
			t.Fatal(err)
		}
		n, err := c.Await("pw", stacktest.RawTimeout)
		if err != nil {
			t.Fatal(err)
		}
		// The plugin's stamp (a password login) decides.
		if n.Attr("type") != "result" {
			t.Fatalf("a password session's request: %s; want a result", n)
		}
	})

	// 10.4: a certificate of a trusted CA (here the embedded CA), never
	// stored, logs in but may not manage certificates: an <append/> of a
	// self-signed certificate pipelined behind bind is refused, so the CA's
	// revocation leaves no backdoor.
	dave := st.Register(t, "dave")
	ca, err := localca.Load(filepath.Join(st.DataDir, "ca"), localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	daveKey := newKey(t)
	issued, err := ca.Issue(ctx, &enroll.IssueRequest{Account: dave, CSR: catest.NewCSR(t, catest.CSROptions{Key: daveKey}), Lifetime: 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	trusted := &certtest.Cert{Cert: issued.Cert, DER: issued.Chain[0], Key: daveKey}
	backdoor := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{dave.String()}})
	t.Run("trusted-root/append-pipelined-behind-bind", func(t *testing.T) {
		c := st.rawCertLogin(t, trusted)
		if _, err := c.BindThen("", appendIQ("ap", "backdoor", backdoor.DER)+enrollIQ(t, "enr", comp, "")); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"ap", "enr"} {
			n, err := c.Await(id, stacktest.RawTimeout)
			if err != nil {
				t.Fatal(err)
			}
			wantForbidden(t, n, "may not manage")
		}
	})
	t.Run("trusted-root/append-addressed-to-the-component", func(t *testing.T) {
		c := st.rawCertLogin(t, trusted)
		ap := strings.Replace(appendIQ("ap2", "backdoor", backdoor.DER), "<iq type='set'", "<iq type='set' to='"+comp.String()+"'", 1)
		if _, err := c.BindThen("", ap); err != nil {
			t.Fatal(err)
		}
		n, err := c.Await("ap2", stacktest.RawTimeout)
		if err != nil {
			t.Fatal(err)
		}
		wantForbidden(t, n, "may not manage")
	})
	if err := ca.Revoke(ctx, &enroll.RevokeRequest{Cert: issued.Cert}); err != nil {
		t.Fatal(err)
	}
	st.mustRefuse(t, dave, tlsCert(issued.Chain[:1], daveKey), "not-authorized")
	st.mustRefuse(t, dave, stacktest.TLSCert(backdoor), "not-authorized")
}
