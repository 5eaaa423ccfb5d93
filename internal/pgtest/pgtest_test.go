package pgtest_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/internal/pgtest"
)

func TestStartRestart(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{})
	db := s.CreateDB(t)
	ctx := context.Background()
	for _, tc := range []struct{ name, url string }{
		{"tcp", s.URL(db)},
		{"socket", s.SocketURL(db)},
		{"password", s.RoleURL(pgtest.PasswordRole, pgtest.PasswordRolePassword, db)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := pgx.Connect(ctx, tc.url)
			if err != nil {
				t.Fatal(err)
			}
			c.Close(ctx)
		})
	}
	if c, err := pgx.Connect(ctx, s.RoleURL(pgtest.PasswordRole, "wrong", db)); err == nil {
		c.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
	s.Kill()
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Exec(ctx, db, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
}
