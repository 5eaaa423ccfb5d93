package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage/sqlite"
)

// TestCertStateWaitsForComponent: disable/revoke wait for every running
// component (a watcher seen lately) to pass their audit entry on.
func TestCertStateWaitsForComponent(t *testing.T) {
	tests := []struct {
		name    string
		marks   func(db *sqlite.DB, newest int64) // run before the command, with the newest audit ID before it
		wait    string
		code    int
		wantErr string
	}{
		{name: "no-component", marks: func(*sqlite.DB, int64) {}, wantErr: "no running component has read the audit log"},
		{name: "stale-component", marks: func(db *sqlite.DB, newest int64) { markAt(t, db, "certs.example.org", newest, testNow.Add(-time.Hour)) },
			wantErr: "no running component has read the audit log"},
		{name: "component-behind", marks: func(db *sqlite.DB, newest int64) { markAt(t, db, "certs.example.org", newest, testNow) },
			wait: "100ms", code: exitNotPassedOn, wantErr: "did not pass it on within 100ms"},
		{name: "one-of-two-behind", marks: func(db *sqlite.DB, newest int64) {
			markAt(t, db, "certs.example.org", newest+100, testNow)
			markAt(t, db, "certs2.example.org", newest, testNow)
		}, wait: "100ms", code: exitNotPassedOn, wantErr: "certs2.example.org"},
		{name: "component-ahead", marks: func(db *sqlite.DB, newest int64) { markAt(t, db, "certs.example.org", newest+100, testNow) },
			wantErr: "passed on to the server by certs.example.org"},
		{name: "no-wait", marks: func(db *sqlite.DB, newest int64) { markAt(t, db, "certs.example.org", newest, testNow) },
			wait: "0", wantErr: "passes the change on"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := seedAdminStore(t)
			db, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			newest, err := db.Audit(context.Background(), "", 1)
			if err != nil {
				t.Fatal(err)
			}
			tc.marks(db, newest[0].ID)
			db.Close()
			args := []string{"cert", "disable", "--data-dir", dir, "--jid", "alice@example.org", "--name", "laptop"}
			if tc.wait != "" {
				args = append(args, "--wait", tc.wait)
			}
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.wantErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.wantErr, stderr)
			}
			// Either way the change is recorded.
			if got, _ := states(t, dir, "alice@example.org"); got["laptop"] != "disabled" {
				t.Errorf("laptop is %s, want disabled", got["laptop"])
			}
		})
	}
}

// markAt writes watcher's mark as if at seen.
func markAt(t *testing.T, db *sqlite.DB, watcher string, id int64, seen time.Time) {
	t.Helper()
	at, err := sqlite.Open(context.Background(), db.Path(), sqlite.Options{Now: func() time.Time { return seen }})
	if err != nil {
		t.Fatal(err)
	}
	defer at.Close()
	if err := at.MarkPassedOn(context.Background(), watcher, id); err != nil {
		t.Fatal(err)
	}
}
