package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/internal/pgtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
)

// The admin commands open a postgres:// store through the same opener as
// serve, with the password from --store-password-file: list shows what is
// stored, revoke changes it, and a wrong password is an error, not an empty
// store.
func TestPostgresStoreAdmin(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	db := s.CreateDB(t)
	url := s.RoleURL(pgtest.PasswordRole, "", db)
	st, err := postgres.Open(context.Background(), s.RoleURL(pgtest.PasswordRole, pgtest.PasswordRolePassword, db), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	c := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}})
	rec := &storage.Cert{Account: "alice@example.org", Name: "laptop", DER: c.DER, Fingerprint: storage.FingerprintOf(c.DER),
		NotBefore: c.Cert.NotBefore, NotAfter: c.Cert.NotAfter, Issuer: c.Cert.Issuer.String(), Source: storage.SourceUpload}
	if err := st.AddCert(context.Background(), rec, storage.AddOptions{Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "pw"), filepath.Join(dir, "wrong")
	os.WriteFile(good, []byte(pgtest.PasswordRolePassword+"\n"), 0o600)
	os.WriteFile(bad, []byte("wrong\n"), 0o600)
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(dir, "none"))

	code, stdout, stderr := runCLI(t, testNow, nil, "cert", "list", "--store", url, "--store-password-file", good, "--jid", "alice@example.org")
	if code != 0 {
		t.Fatalf("cert list: exit %d\n%s%s", code, stdout, stderr)
	}
	checkOutput(t, "stdout", stdout, []string{`active   "laptop"`}, nil)

	code, stdout, stderr = runCLI(t, testNow, nil, "cert", "list", "--store", url, "--store-password-file", bad, "--jid", "alice@example.org")
	if code != exitFailure {
		t.Fatalf("cert list with a wrong password: exit %d, want %d\n%s%s", code, exitFailure, stdout, stderr)
	}

	code, stdout, stderr = runCLI(t, testNow, nil, "cert", "revoke", "--store", url, "--store-password-file", good, "--jid", "alice@example.org", "--name", "laptop", "--wait", "0")
	if code != 0 {
		t.Fatalf("cert revoke: exit %d\n%s%s", code, stdout, stderr)
	}
	got, err := st.FindCertByFingerprint(context.Background(), rec.Fingerprint)
	if err != nil || got.State != storage.StateRevoked {
		t.Fatalf("after cert revoke: %v, %v", got, err)
	}
}
