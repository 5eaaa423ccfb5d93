package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/saslcert/saslcert/storage"
)

// exitNotPassedOn: the change is recorded, but a running component did not
// confirm within --wait that it passed it on to the server.
const exitNotPassedOn = 3

// Waiting for the running component (see waitPassedOn).
const (
	defaultPassOnWait = 15 * time.Second
	// watcherAlive: a component whose audit watch wrote its mark this
	// recently is running. serve refuses an --admin-watch-interval longer
	// than a third of it.
	watcherAlive = 30 * time.Second
	passOnPoll   = 50 * time.Millisecond
)

// passedOnStore is what waitPassedOn reads.
type passedOnStore interface {
	Audit(ctx context.Context, account string, limit int) ([]storage.AuditEntry, error)
	PassedOn(ctx context.Context) ([]storage.PassedOnMark, error)
}

// waitPassedOn waits until every running component (an audit watcher whose
// mark is younger than watcherAlive) has passed on the newest audit entry of
// account, which the command has just written, so that when the command
// says "revoked" or "disabled" the server no longer logs anyone in with the
// certificate (its plugin has forgotten the cached answers, and live sessions
// of a revoked certificate are closed). It writes what it found to w and
// returns nil (passed on, or no component is running: then nothing can log
// in until one starts, and it reads the store), or an exit error with
// exitNotPassedOn when a running component did not catch up within wait.
// wait <= 0: do not wait (the change reaches the server within the
// component's --admin-watch-interval).
func waitPassedOn(ctx context.Context, db passedOnStore, account string, wait time.Duration, now func() time.Time, w io.Writer) error {
	if wait <= 0 {
		fmt.Fprintln(w, runningHint)
		return nil
	}
	newest, err := db.Audit(ctx, account, 1)
	if err != nil || len(newest) == 0 {
		return cli.Exit(fmt.Sprintf("the change is recorded, but its audit entry cannot be read to wait for the running component: %v", err), exitNotPassedOn)
	}
	id := newest[0].ID
	// The deadline runs on the real clock: now is the (possibly fixed) clock
	// the store and its marks use.
	deadline := time.Now().Add(wait)
	for {
		marks, err := db.PassedOn(ctx)
		if err != nil {
			return cli.Exit(fmt.Sprintf("the change is recorded, but cannot read whether the running component passed it on: %v", err), exitNotPassedOn)
		}
		var alive, behind []string
		for _, m := range marks {
			if now().Sub(m.Seen) > watcherAlive {
				continue
			}
			alive = append(alive, m.Watcher)
			if m.AuditID < id {
				behind = append(behind, fmt.Sprintf("%s (at audit entry %d)", m.Watcher, m.AuditID))
			}
		}
		switch {
		case len(alive) == 0:
			fmt.Fprintf(w, "no running component has read the audit log in the last %s: nothing logs in with a certificate until\n"+
				"'saslcert serve' runs, and it reads the store when it starts. (A component running with\n"+
				"--admin-watch-interval 0 does not pass changes on: restart it.)\n%s\n", watcherAlive, runningHint)
			return nil
		case len(behind) == 0:
			fmt.Fprintf(w, "passed on to the server by %s (audit entry %d): no login with it succeeds any more\n", strings.Join(alive, ", "), id)
			return nil
		case !time.Now().Before(deadline):
			return cli.Exit(fmt.Sprintf("the change is recorded (audit entry %d), but the running component %s did not pass it on within %s: "+
				"logins with the certificate may still succeed until it does; check its log, or restart it", id, strings.Join(behind, ", "), wait), exitNotPassedOn)
		}
		t := time.NewTimer(passOnPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return cli.Exit(fmt.Sprintf("the change is recorded (audit entry %d); interrupted while waiting for the running component", id), exitNotPassedOn)
		case <-t.C:
		}
	}
}
