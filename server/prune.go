package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// Prune deletes, now and every PruneInterval until ctx ends, disabled and
// revoked records that expired more than xep0257.DefaultExpiredGrace ago and
// audit entries older than retention. Failures are logged and retried at the
// next run.
func Prune(ctx context.Context, db storage.Store, retention time.Duration, now func() time.Time, log *slog.Logger) {
	tick := time.NewTicker(PruneInterval)
	defer tick.Stop()
	for {
		t := now()
		r, err := db.Prune(ctx, storage.PruneOptions{ExpiredBefore: t.Add(-xep0257.DefaultExpiredGrace), AuditBefore: t.Add(-retention)})
		switch {
		case err != nil && ctx.Err() == nil:
			log.Warn("prune: could not delete expired history and old audit entries", "err", err)
		case err == nil && (r.Certs > 0 || r.Audit > 0):
			log.Info("prune: deleted expired history and old audit entries", "certs", r.Certs, "audit", r.Audit)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
