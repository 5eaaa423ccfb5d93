package xep0257_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// TestImportAnswersAsAppend: Import refuses what an <append/> from the
// account refuses, with the same stanza error, and stores what it accepts
// with the import's actor.
func TestImportAnswersAsAppend(t *testing.T) {
	expired := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"},
		NotBefore: now().Add(-48 * time.Hour), NotAfter: now().Add(-24 * time.Hour)}).DER
	ca := certtest.New(t, certtest.Options{XMPPAddrs: []string{"alice@example.org"}, IsCA: true}).DER
	tests := []struct {
		name   string
		certN  string
		der    func(stored []byte) []byte
		limits xep0257.Limits
		cause  error // errors.Is on Import's error; nil: a refusal without a storage cause
	}{
		{"expired", "old", func([]byte) []byte { return expired }, xep0257.Limits{}, nil},
		{"ca", "ca", func([]byte) []byte { return ca }, xep0257.Limits{}, nil},
		{"other account", "bob's", func([]byte) []byte { return certFor(t, "bob@example.org") }, xep0257.Limits{}, nil},
		{"control character in the name", "a\tb", func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{}, nil},
		{"blank name", "  ", func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{}, nil},
		{"name too long", strings.Repeat("n", 65), func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{}, nil},
		{"too large", "big", func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{MaxCertSize: 10}, nil},
		{"stored already", "again", func(stored []byte) []byte { return stored }, xep0257.Limits{}, storage.ErrDuplicate},
		{"name taken", "first", func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{}, storage.ErrNameTaken},
		{"over the limit", "second", func([]byte) []byte { return certFor(t, "alice@example.org") }, xep0257.Limits{MaxPerAccount: 1}, storage.ErrLimit},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Two stores with the same first certificate: one for the
			// append, one for the import.
			stored := certFor(t, "alice@example.org")
			var hs [2]*xep0257.Handler
			for i := range hs {
				hs[i] = newHandler(t, openStore(t))
				mustAppend(t, hs[i], alice, "first", stored, false)
				hs[i].Limits = tc.limits
			}
			der := tc.der(stored)
			_, appendErr := hs[0].Process(t.Context(), alice, passwordAuth, &xep0257.Append{Name: tc.certN, Cert: der})
			var want stanza.Error
			if !errors.As(appendErr, &want) {
				t.Fatalf("append: %v, want a stanza error", appendErr)
			}
			err := hs[1].Import(t.Context(), alice.Bare(), tc.certN, der, false, "import")
			var ae *xep0257.AppendError
			if !errors.As(err, &ae) {
				t.Fatalf("Import = %v, want an *AppendError", err)
			}
			if ae.Stanza.Condition != want.Condition || ae.Stanza.Type != want.Type || ae.Error() != want.Text[""] || ae.Internal {
				t.Errorf("Import: %s/%s %q (internal %v); append: %s/%s %q", ae.Stanza.Type, ae.Stanza.Condition, ae.Error(), ae.Internal,
					want.Type, want.Condition, want.Text[""])
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Errorf("Import = %v, want it to wrap %v", err, tc.cause)
			}
			certs, _ := hs[1].Store.ListCerts(t.Context(), "alice@example.org")
			if len(certs) != 1 {
				t.Errorf("%d records after a refused import", len(certs))
			}
		})
	}

	h := newHandler(t, openStore(t))
	der := certFor(t, "alice@example.org/desk")
	if err := h.Import(t.Context(), jid.MustParse("alice@example.org"), " desk ", der, true, "import"); err != nil {
		t.Fatal(err)
	}
	certs, err := h.Store.ListCerts(t.Context(), "alice@example.org")
	if err != nil || len(certs) != 1 || certs[0].Name != "desk" || !certs[0].NoCertManagement || certs[0].Resource != "desk" {
		t.Fatalf("stored %+v, %v", certs, err)
	}
	audit, _ := h.Store.Audit(t.Context(), "alice@example.org", 0)
	if len(audit) != 1 || audit[0].Actor != "import" {
		t.Errorf("audit %+v", audit)
	}
}
