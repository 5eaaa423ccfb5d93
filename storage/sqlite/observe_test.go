package sqlite_test

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/storage/storetest"
)

// The observed store keeps the whole Store contract.
func TestObserveContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		return storage.Observe(sqlitetest.Open(t, sqlite.Options{Now: now}), func(context.Context, string) {})
	})
}

// Observe reports exactly the committed changes, with the account, before
// the call returns; failed calls report nothing.
func TestObserve(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	s := storage.Observe(sqlitetest.Open(t, sqlite.Options{}), func(_ context.Context, account string) {
		mu.Lock()
		seen = append(seen, account)
		mu.Unlock()
	})
	took := func() []string {
		mu.Lock()
		defer mu.Unlock()
		s := seen
		seen = nil
		return s
	}
	ctx := t.Context()
	cert := func(account, name string) *storage.Cert {
		der := make([]byte, 200)
		rand.Read(der)
		der[0], der[1] = 0x30, 0x81
		return &storage.Cert{Account: account, Name: name, DER: der, Fingerprint: storage.FingerprintOf(der),
			NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1e10, 0), Source: storage.SourceUpload}
	}
	laptop := cert("alice@example.org", "laptop")
	steps := []struct {
		name string
		do   func() error
		want []string
	}{
		{"add", func() error { return s.AddCert(ctx, laptop, storage.AddOptions{Actor: "t"}) }, []string{"alice@example.org"}},
		{"add a duplicate", func() error { return s.AddCert(ctx, laptop, storage.AddOptions{Actor: "t"}) }, nil},
		{"add over the limit", func() error {
			return s.AddCert(ctx, cert("alice@example.org", "phone"), storage.AddOptions{Actor: "t", MaxActive: 1})
		}, nil},
		{"disable", func() error {
			_, err := s.SetState(ctx, "alice@example.org", "laptop", storage.StateDisabled, "t")
			return err
		}, []string{"alice@example.org"}},
		{"disable an unknown name", func() error {
			_, err := s.SetState(ctx, "alice@example.org", "laptop", storage.StateDisabled, "t")
			return err
		}, nil},
		{"revoke by fingerprint", func() error {
			_, err := s.SetStateByFingerprint(ctx, laptop.Fingerprint, storage.StateRevoked, "t")
			return err
		}, []string{"alice@example.org"}},
		{"revoke an unknown fingerprint", func() error {
			_, err := s.SetStateByFingerprint(ctx, storage.FingerprintOf([]byte("x")), storage.StateRevoked, "t")
			return err
		}, nil},
		{"reads", func() error {
			_, err := s.ListCerts(ctx, "alice@example.org")
			if err == nil {
				_, err = s.FindCertByFingerprint(ctx, laptop.Fingerprint)
			}
			return err
		}, nil},
	}
	for _, st := range steps {
		err := st.do()
		if got := took(); !slices.Equal(got, st.want) {
			t.Errorf("%s (err %v): reported %v, want %v", st.name, err, got, st.want)
		}
		if (st.want == nil) == (err == nil) && st.name != "reads" {
			t.Errorf("%s: err %v", st.name, err)
		}
		if errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("%s: %v", st.name, err)
		}
	}
}
