package e2e

import (
	"os"
	"testing"

	"github.com/saslcert/saslcert/internal/ejabberdtest"
)

// TestMain builds mod_saslcert once for every ejabberd stack of the suite.
func TestMain(m *testing.M) { os.Exit(ejabberdtest.ShareModule(m)) }
