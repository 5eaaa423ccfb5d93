package enrolle2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enroll/localca"
	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/storage"
	"mellium.im/xmpp/commands"
)

// TestEnrollBurst (issue 16.3): one account sends many "Request a
// certificate" commands at once (form submitted with the first execute,
// all in flight together) to "saslcert serve" with the embedded CA and
// --max-certs 3. At most three certificates are issued; the other requests
// are refused before the CA is asked, so the CA has nothing to revoke.
// Before, every request reached the CA and the surplus was revoked one by
// one.
func TestEnrollBurst(t *testing.T) {
	const maxCerts, n = 3, 24
	st := newStack(t)
	st.initCA(t)
	st.startServe(t, st.baseConfig(t, fmt.Sprintf(`max-certs = %d
ca = "embedded"
`, maxCerts)))
	comp := jid.MustParse(st.S.ComponentJID())
	st.Register(t, "gina")
	pw := st.passwordLogin(t, "gina")

	csrs := make([]string, n)
	for i := range csrs {
		csrs[i] = csrPEM(t, newKey(t), "", "")
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	ctx, cancel := context.WithTimeout(context.Background(), eventTimeout)
	defer cancel()
	for i := range n {
		wg.Go(func() {
			_, errs[i] = execute(ctx, pw.Session, commands.Command{JID: comp, Node: enrollcmd.NodeEnroll, Action: "execute"},
				submitForm(map[string]string{enrollcmd.FieldCSR: csrs[i], enrollcmd.FieldName: fmt.Sprintf("burst %d", i)}))
		})
	}
	wg.Wait()
	issued := 0
	conds := map[string]int{}
	for i, err := range errs {
		var se stanza.Error
		switch {
		case err == nil:
			issued++
		case errors.As(err, &se):
			conds[string(se.Condition)]++
		default:
			t.Fatalf("request %d: %v", i, err)
		}
	}
	t.Logf("%d requests at once: %d issued, refused: %v", n, issued, conds)
	if issued == 0 || issued > maxCerts {
		t.Fatalf("%d certificates issued; want between 1 and --max-certs %d", issued, maxCerts)
	}

	ca, err := localca.Load(filepath.Join(st.DataDir, "ca"), localca.Options{})
	if err != nil {
		t.Fatal(err)
	}
	revs, err := ca.Revocations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(revs) != 0 {
		t.Fatalf("the CA revoked %d certificates it issued beyond the limit; want none issued", len(revs))
	}
	db, err := st.OpenStore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	active, err := db.ListCerts(ctx, "gina@"+st.S.Domain(), storage.StateActive)
	if err != nil || len(active) != issued {
		t.Fatalf("%d active certificates, %v; want the %d issued", len(active), err, issued)
	}
}
