package backend_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/internal/pgtest"

	"github.com/saslcert/saslcert/storage/backend"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, url, dataDir string
		want               string
		wantErr            error // nil: none; errAny: any
	}{
		{"default", "", "/d", "/d/saslcert.db", nil},
		{"sqlite data dir", "sqlite:", "/d", "/d/saslcert.db", nil},
		{"sqlite path", "sqlite:/x/certs.db", "/d", "/x/certs.db", nil},
		{"sqlite slashes", "sqlite:///x/certs.db", "", "/x/certs.db", nil},
		{"postgres", "postgres://saslcert@db.example.org/saslcert?sslmode=verify-full", "/d", "postgres://saslcert@db.example.org/saslcert?sslmode=verify-full", nil},
		{"postgresql", "postgresql://db.example.org:5433/saslcert", "", "postgresql://db.example.org:5433/saslcert", nil},
		{"error/postgres password", "postgres://saslcert:hunter2@db/saslcert", "/d", "", backend.ErrPasswordInURL},
		{"error/postgres password setting", "postgres://db/saslcert?password=hunter2", "/d", "", backend.ErrPasswordInURL},
		{"error/postgres opaque", "postgresql:saslcert", "/d", "", errAny},
		{"error/postgres bad sslmode", "postgres://db/saslcert?sslmode=sometimes", "/d", "", errAny},
		{"error/unknown", "mysql:x", "/d", "", errAny},
		{"error/no scheme", "/x/certs.db", "/d", "", errAny},
		{"error/no data dir", "sqlite:", "", "", errAny},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := backend.Parse(tc.url, tc.dataDir)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Parse: %v", err)
			case tc.wantErr != nil && err == nil:
				t.Fatalf("Parse = %v, want an error", got)
			case tc.wantErr != nil && tc.wantErr != errAny && !errors.Is(err, tc.wantErr):
				t.Fatalf("Parse: %v, want %v", err, tc.wantErr)
			}
			if err == nil && got.String() != tc.want {
				t.Errorf("Parse = %s, want %s", got, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "hunter2") {
				t.Errorf("the error shows the password: %v", err)
			}
		})
	}
}

var errAny = errors.New("any error")

func TestOpen(t *testing.T) {
	tg, err := backend.Parse("sqlite:", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backend.Open(t.Context(), tg, backend.Options{MustExist: true}); !errors.Is(err, backend.ErrNotExist) {
		t.Fatalf("MustExist on a missing store: %v", err)
	}
	db, err := backend.Open(t.Context(), tg, backend.Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	db, err = backend.Open(t.Context(), tg, backend.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	if filepath.Base(tg.Path) != backend.SQLiteFile {
		t.Errorf("path %s", tg.Path)
	}
}

// TestOpenPostgres: a postgres:// store opens with the password from the
// password file (the role needs one), not without it, and not from a file
// every user can read.
func TestOpenPostgres(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	db := s.CreateDB(t)
	tg, err := backend.Parse(s.RoleURL(pgtest.PasswordRole, "", db), "")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "pw")
	open := filepath.Join(dir, "pw-open")
	for _, f := range []struct {
		path string
		mode os.FileMode
	}{{good, 0o600}, {open, 0o644}} {
		if err := os.WriteFile(f.path, []byte(pgtest.PasswordRolePassword+"\n"), f.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(f.path, f.mode)
	}
	t.Setenv("PGPASSWORD", "")
	t.Setenv("PGPASSFILE", filepath.Join(dir, "none"))
	if st, err := backend.Open(t.Context(), tg, backend.Options{}); err == nil {
		st.Close()
		t.Fatal("opened without the password")
	}
	if st, err := backend.Open(t.Context(), tg, backend.Options{PasswordFile: open}); err == nil {
		st.Close()
		t.Fatal("opened with a password file every user can read")
	}
	st, err := backend.Open(t.Context(), tg, backend.Options{PasswordFile: good, MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	t.Setenv("PGPASSWORD", pgtest.PasswordRolePassword)
	st, err = backend.Open(t.Context(), tg, backend.Options{})
	if err != nil {
		t.Fatalf("with PGPASSWORD: %v", err)
	}
	st.Close()
}
