package progress_test

import (
	"testing"

	"github.com/saslcert/saslcert/internal/progress"
	"github.com/saslcert/saslcert/internal/ptytest"
)

// TestRealTerminal: on a real (pseudo-)terminal New draws.
func TestRealTerminal(t *testing.T) {
	ptm, tty := ptytest.Open(t)
	if !progress.Terminal(tty) {
		t.Fatal("a pty is not taken for a terminal")
	}
	m := progress.New(tty, "copy certs", 3)
	m.Add(3)
	m.Done()
	ptytest.ReadUntil(t, ptm, "copy certs: 3/3 (100%)")
}
