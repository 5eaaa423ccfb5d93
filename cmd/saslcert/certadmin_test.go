package main

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
)

// seedAdminStore stores certificates for alice (laptop, phone, tablet with a
// forced resource) and bob (desk) in a fresh data directory.
func seedAdminStore(t *testing.T) (dir string, fps map[string]storage.Fingerprint) {
	t.Helper()
	dir = t.TempDir()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fps = map[string]storage.Fingerprint{}
	for _, s := range []struct{ account, name, addr string }{
		{"alice@example.org", "laptop", "alice@example.org"},
		{"alice@example.org", "phone", "alice@example.org"},
		{"alice@example.org", "tablet", "alice@example.org/tablet"},
		{"bob@example.org", "desk", "bob@example.org"},
	} {
		c := certtest.New(t, certtest.Options{XMPPAddrs: []string{s.addr}, NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(30 * 24 * time.Hour)})
		up, err := sasl.CheckUpload(c.DER, jid.MustParse(s.account), testNow, sasl.DefaultPolicy())
		if err != nil {
			t.Fatal(err)
		}
		rec := up.Record(s.name, s.name == "phone", storage.SourceUpload)
		if err := db.AddCert(context.Background(), rec, storage.AddOptions{Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		fps[s.account+"/"+s.name] = rec.Fingerprint
	}
	return dir, fps
}

// states reads the state of every record and the audit actors of account.
func states(t *testing.T, dir, account string) (map[string]storage.State, []string) {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	certs, err := db.ListCerts(context.Background(), account)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storage.State{}
	for _, c := range certs {
		out[c.Name] = c.State
	}
	audit, err := db.Audit(context.Background(), account, 0)
	if err != nil {
		t.Fatal(err)
	}
	var actors []string
	for _, a := range audit {
		actors = append(actors, string(a.Action)+":"+a.Actor)
	}
	return out, actors
}

func TestCertList(t *testing.T) {
	dir, fps := seedAdminStore(t)
	tests := []struct {
		name          string
		args          []string
		code          int
		want, notWant []string
		wantErr       string
	}{
		{name: "ok/all", args: []string{"--jid", "Alice@Example.org"}, want: []string{
			`active   "laptop"  ` + fps["alice@example.org/laptop"].String(),
			`"phone"`, "no-cert-management", `"tablet"`, "forced resource tablet", "source upload",
			"valid 2026-11-22T11:00:00Z .. 2026-12-22T12:00:00Z"}, notWant: []string{"desk"}},
		{name: "ok/none", args: []string{"--jid", "carol@example.org"}, want: []string{"carol@example.org has no stored certificates"}},
		{name: "error/full-jid", args: []string{"--jid", "alice@example.org/x"}, code: exitUsage, wantErr: "--jid"},
		{name: "error/no-jid", args: nil, code: exitUsage, wantErr: "jid"},
		{name: "error/argument", args: []string{"--jid", "alice@example.org", "extra"}, code: exitUsage, wantErr: "unexpected argument"},
		{name: "error/no-database", args: []string{"--jid", "alice@example.org", "--data-dir", filepath.Join(dir, "nope")}, code: exitFailure, wantErr: "is --data-dir right?"},
		{name: "ok/store-url", args: []string{"--jid", "bob@example.org", "--data-dir", filepath.Join(dir, "nope"), "--store", "sqlite:" + filepath.Join(dir, DBFile)},
			want: []string{`"desk"`}},
		{name: "error/store-postgres-password", args: []string{"--jid", "bob@example.org", "--store", "postgres://u:pw@db/saslcert"}, code: exitUsage, wantErr: "--store-password-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"cert", "list", "--data-dir", dir}, tc.args...)
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			checkOutput(t, "stdout", stdout, tc.want, tc.notWant)
			checkOutput(t, "stderr", stderr, []string{tc.wantErr}, nil)
		})
	}
	// A mistyped data directory is not created.
	if _, err := os.Stat(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the mistyped data directory exists now: %v", err)
	}
}

func TestCertDisableRevoke(t *testing.T) {
	tests := []struct {
		name       string
		args       []string
		code       int
		wantOut    []string
		wantErr    string
		wantStates map[string]storage.State
	}{
		{name: "ok/revoke-one", args: []string{"revoke", "--jid", "alice@example.org", "--name", "phone"}, wantOut: []string{`revoked "phone" of alice@example.org`},
			wantErr:    "passes the change on",
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateRevoked, "tablet": storage.StateActive}},
		{name: "ok/disable-one", args: []string{"disable", "--jid", "alice@example.org", "--name", "laptop"}, wantOut: []string{`disabled "laptop"`},
			wantStates: map[string]storage.State{"laptop": storage.StateDisabled, "phone": storage.StateActive, "tablet": storage.StateActive}},
		{name: "ok/revoke-all", args: []string{"revoke", "--jid", "alice@example.org", "--all"}, wantOut: []string{`revoked "laptop"`, `revoked "phone"`, `revoked "tablet"`},
			wantStates: map[string]storage.State{"laptop": storage.StateRevoked, "phone": storage.StateRevoked, "tablet": storage.StateRevoked}},
		{name: "ok/disable-all", args: []string{"disable", "--jid", "alice@example.org", "--all"}, wantOut: []string{`disabled "laptop"`, `disabled "phone"`, `disabled "tablet"`},
			wantStates: map[string]storage.State{"laptop": storage.StateDisabled, "phone": storage.StateDisabled, "tablet": storage.StateDisabled}},
		{name: "ok/revoke-all-none-active", args: []string{"revoke", "--jid", "carol@example.org", "--all"}, wantOut: []string{"carol@example.org has no certificates to revoke"},
			wantStates: map[string]storage.State{}},
		{name: "error/unknown-name", args: []string{"revoke", "--jid", "alice@example.org", "--name", "fridge"}, code: exitFailure, wantErr: `alice@example.org has no active certificate named "fridge"`,
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateActive, "tablet": storage.StateActive}},
		{name: "error/another-account's-name", args: []string{"revoke", "--jid", "alice@example.org", "--name", "desk"}, code: exitFailure, wantErr: `no active certificate named "desk"`,
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateActive, "tablet": storage.StateActive}},
		{name: "error/name-and-all", args: []string{"revoke", "--jid", "alice@example.org", "--name", "phone", "--all"}, code: exitUsage, wantErr: "exactly one of --name and --all",
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateActive, "tablet": storage.StateActive}},
		{name: "error/neither", args: []string{"disable", "--jid", "alice@example.org"}, code: exitUsage, wantErr: "exactly one of --name and --all",
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateActive, "tablet": storage.StateActive}},
		{name: "error/bad-jid", args: []string{"revoke", "--jid", "example.org", "--all"}, code: exitUsage, wantErr: "--jid",
			wantStates: map[string]storage.State{"laptop": storage.StateActive, "phone": storage.StateActive, "tablet": storage.StateActive}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir, _ := seedAdminStore(t)
			args := append([]string{"cert"}, tc.args[0], "--data-dir", dir)
			args = append(args, tc.args[1:]...)
			code, stdout, stderr := runCLI(t, testNow, nil, args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, stdout, stderr)
			}
			checkOutput(t, "stdout", stdout, tc.wantOut, nil)
			checkOutput(t, "stderr", stderr, []string{tc.wantErr}, nil)
			account := "alice@example.org"
			if tc.name == "ok/revoke-all-none-active" {
				account = "carol@example.org"
			}
			got, actors := states(t, dir, account)
			for name, want := range tc.wantStates {
				if got[name] != want {
					t.Errorf("%s is %s, want %s", name, got[name], want)
				}
			}
			changed := 0
			for _, a := range actors {
				if a == "disable:cli" || a == "revoke:cli" {
					changed++
				}
			}
			wantChanged := 0
			for _, s := range tc.wantStates {
				if s != storage.StateActive {
					wantChanged++
				}
			}
			if changed != wantChanged {
				t.Errorf("audit %v: %d entries by cli, want %d", actors, changed, wantChanged)
			}
			// bob is never touched.
			if bob, _ := states(t, dir, "bob@example.org"); bob["desk"] != storage.StateActive {
				t.Errorf("bob's desk is %s", bob["desk"])
			}
		})
	}
}

// revoke --all also revokes a disabled certificate (as an account deletion
// does), so that nothing of the account can be re-enabled or reused.
func TestCertRevokeAllTakesDisabled(t *testing.T) {
	dir, _ := seedAdminStore(t)
	if code, out, errOut := runCLI(t, testNow, nil, "cert", "disable", "--data-dir", dir, "--jid", "alice@example.org", "--name", "laptop"); code != exitOK {
		t.Fatalf("disable: %d %s %s", code, out, errOut)
	}
	code, stdout, stderr := runCLI(t, testNow, nil, "cert", "revoke", "--data-dir", dir, "--jid", "alice@example.org", "--all")
	if code != exitOK {
		t.Fatalf("revoke --all: %d %s %s", code, stdout, stderr)
	}
	checkOutput(t, "stdout", stdout, []string{`revoked "laptop"`, `revoked "phone"`, `revoked "tablet"`}, nil)
	got, _ := states(t, dir, "alice@example.org")
	for name, s := range got {
		if s != storage.StateRevoked {
			t.Errorf("%s is %s after revoke --all", name, s)
		}
	}
	// The account lives on: no tombstone, it may add certificates again.
	db, err := sqlite.Open(context.Background(), filepath.Join(dir, DBFile), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if ts, err := db.Tombstones(context.Background()); err != nil || len(ts) != 0 {
		t.Errorf("tombstones after revoke --all: %v %v, want none", ts, err)
	}
}
