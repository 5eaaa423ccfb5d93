package sqlite_test

import (
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/storage/storetest"
)

func TestOAuthContract(t *testing.T) {
	storetest.RunOAuth(t, func(t *testing.T, now func() time.Time) storage.OAuthStore {
		return sqlitetest.Open(t, sqlite.Options{Now: now})
	})
}
