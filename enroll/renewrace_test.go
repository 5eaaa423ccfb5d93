package enroll_test

import (
	"context"
	"testing"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/storage"
)

// hookIssuer runs before on every renewal request, then issues.
type hookIssuer struct {
	enroll.Issuer
	before func(req *enroll.IssueRequest)
}

func (h *hookIssuer) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	if req.Renew != nil && h.before != nil {
		h.before(req)
	}
	return h.Issuer.Issue(ctx, req)
}

// TestEnrollServiceSweepRaces: a certificate disabled or revoked while the
// sweep has the CA sign its renewal is not renewed: the store refuses the
// renewal (the predecessor's state is read in the insert's transaction),
// no notice is sent, and the CA revokes what it signed.
func TestEnrollServiceSweepRaces(t *testing.T) {
	for _, to := range []storage.State{storage.StateDisabled, storage.StateRevoked} {
		t.Run(string(to), func(t *testing.T) {
			var store storage.Store
			hook := &hookIssuer{}
			f := newSvcFixture(t, func(c *enroll.ServiceConfig, f *svcFixture) {
				hook.Issuer = f.iss
				c.Issuers[enroll.EmbeddedIssuer] = hook
				store = f.db
			})
			ctx := context.Background()
			old := f.enroll(t, "laptop")
			hook.before = func(*enroll.IssueRequest) {
				if _, err := store.SetState(ctx, svcAlice.String(), "laptop", to, "alice@example.org/phone"); err != nil {
					t.Errorf("SetState during the renewal: %v", err)
				}
			}
			f.clk.Add(2*time.Hour + 5*time.Minute)
			notices, err := f.svc.Sweep(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(notices) != 0 {
				t.Fatalf("notices %+v; want none (the certificate was %s during its renewal)", notices, to)
			}
			if act := f.active(t, svcAlice); len(act) != 0 {
				t.Fatalf("active records %q after the predecessor became %s; want none", act[0].Name, to)
			}
			revs, err := f.ca.Revocations(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var cessation int
			for _, r := range revs {
				if r.Reason == enroll.ReasonCessationOfOperation {
					cessation++
				}
			}
			if cessation != 1 {
				t.Fatalf("%d revocations for cessation of operation at the CA; want the refused renewal's", cessation)
			}
			if got, _ := f.db.FindCertByFingerprint(ctx, old.Record.Fingerprint); got.State != to {
				t.Fatalf("predecessor is %s, want %s", got.State, to)
			}
		})
	}
}
