package postgres_test

import (
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/postgres"
	"github.com/saslcert/saslcert/storage/storetest"
)

func TestOAuthContract(t *testing.T) {
	storetest.RunOAuth(t, func(t *testing.T, now func() time.Time) storage.OAuthStore {
		db, _ := open(t, postgres.Options{Now: now})
		return db
	})
}
