package backend_test

import (
	"errors"
	"path/filepath"
	"testing"

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
		{"error/postgres", "postgres://db/saslcert", "/d", "", backend.ErrNotSupported},
		{"error/postgresql", "postgresql:", "/d", "", backend.ErrNotSupported},
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
