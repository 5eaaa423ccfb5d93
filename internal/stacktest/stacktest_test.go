package stacktest_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/stacktest"
)

// TestStack checks the harness itself: the stack serves, Digest sees every
// change and only changes, the raw client logs in both ways and describes
// answers, and Forge makes the server send a stanza.
func TestStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prosody (-short)")
	}
	st := stacktest.Start(t, stacktest.Options{Forge: true})
	st.Register(t, "alice")
	d0 := st.Digest(t)
	if d0.Certs != 0 || d0.Audit != 0 {
		t.Fatalf("fresh store: %s", d0)
	}
	if again := st.Digest(t); again != d0 {
		t.Fatalf("digest of an unchanged store changed: %s vs %s", d0, again)
	}
	cert := stacktest.NewCert(t, certtest.Options{XMPPAddrs: []string{"alice@" + st.Domain}})
	if time.Until(cert.Cert.NotAfter) < 24*time.Hour || time.Since(cert.Cert.NotBefore) < 0 {
		t.Fatalf("NewCert validity %v .. %v is not around the real clock", cert.Cert.NotBefore, cert.Cert.NotAfter)
	}
	st.AddCert(t, "alice", "laptop", cert, false)
	d1 := st.Digest(t)
	if d1 == d0 || d1.Certs != 1 || d1.Audit != 1 {
		t.Fatalf("after one add: %s (before: %s)", d1, d0)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pw, err := st.RawLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer pw.Close()
	n, err := pw.IQ("get", "", "<items xmlns='urn:xmpp:saslcert:1'/>")
	if err != nil || n.Outcome() != "result" {
		t.Fatalf("items: %v %v", n, err)
	}
	n, err = pw.IQ("set", "", "<revoke xmlns='urn:xmpp:saslcert:1'><name>nope</name></revoke>")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := n.Outcome(), `error cancel/item-not-found: no active certificate named "nope"`; got != want {
		t.Errorf("outcome %q, want %q", got, want)
	}
	ext, err := st.RawLoginCert(ctx, cert, "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(ext.Bound, "alice@"+st.Domain+"/") {
		t.Errorf("bound %q", ext.Bound)
	}
	ext.Close()

	// The same account through xmppclient: Items lists what AddCert stored.
	c, err := st.LoginPassword(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := stacktest.ItemNames(stacktest.Items(t, c)); !slices.Equal(got, []string{"laptop"}) {
		t.Errorf("Items: %q, want [laptop]", got)
	}

	// The server pings the component on our behalf.
	reply, err := pw.Forge("<iq type='get' from='" + st.Domain + "' to='" + st.ComponentJID + "'><ping xmlns='urn:xmpp:ping'/></iq>")
	if err != nil || reply.Outcome() != "result" || reply.Attr("from") != st.ComponentJID {
		t.Errorf("forged ping: %v %v", reply, err)
	}
	if d2 := st.Digest(t); d2 != d1 {
		t.Errorf("reads changed the digest: %s vs %s", d2, d1)
	}
}
