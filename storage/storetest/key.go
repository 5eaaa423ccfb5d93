package storetest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/saslcert/saslcert/storage"
)

// newKey returns a random DER SubjectPublicKeyInfo-shaped SEQUENCE: what
// the records of one key share.
func newKey() []byte {
	k := make([]byte, 65)
	rand.Read(k)
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) { b.AddASN1ObjectIdentifier([]int{1, 2, 840, 10045, 2, 1}) })
		b.AddASN1BitString(k)
	})
	return b.BytesOrPanic()
}

// newKeyCert returns a valid record (not yet stored) whose DER is shaped
// like an X.509 certificate for the key spki (storage.KeyHashOf finds it),
// with a random serial number, so each call gives another fingerprint.
func newKeyCert(account, name string, spki []byte) *storage.Cert {
	serial := make([]byte, 16)
	rand.Read(serial)
	serial[0] &= 0x7f
	serial[0] |= 0x01
	empty := func(b *cryptobyte.Builder) {}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.Tag(0).Constructed().ContextSpecific(), func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
			b.AddASN1(cbasn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(serial) })
			b.AddASN1(cbasn1.SEQUENCE, empty) // signature
			b.AddASN1(cbasn1.SEQUENCE, empty) // issuer
			b.AddASN1(cbasn1.SEQUENCE, empty) // validity
			b.AddASN1(cbasn1.SEQUENCE, empty) // subject
			b.AddBytes(spki)
		})
		b.AddASN1(cbasn1.SEQUENCE, empty)
		b.AddASN1BitString([]byte{0})
	})
	c := newCert(account, name)
	c.DER = b.BytesOrPanic()
	c.Fingerprint = storage.FingerprintOf(c.DER)
	return c
}

// testRevokeKey: revoking one record revokes every record of the account
// for the same key that is not revoked yet, in any state, and nothing else;
// RevokeKey returns them, the named one first; each is audited.
func testRevokeKey(e *env) {
	k, other := newKey(), newKey()
	first := e.add(newKeyCert(alice, "laptop", k), storage.AddOptions{})
	off := e.add(newKeyCert(alice, "laptop old", k), storage.AddOptions{})
	e.setState(alice, "laptop old", storage.StateDisabled)
	renewed := e.add(newKeyCert(alice, "laptop (renewed)", k), storage.AddOptions{Renews: first.Fingerprint})
	phone := e.add(newKeyCert(alice, "phone", other), storage.AddOptions{})
	bobs := e.add(newKeyCert(bob, "laptop", k), storage.AddOptions{}) // another account, same key
	junk := e.addNew(alice, "junk")                                   // not shaped like a certificate: no key

	now := e.clk.advance()
	got, err := e.s.RevokeKey(e.ctx, alice, "laptop (renewed)", "alice@example.org/phone")
	if err != nil {
		e.t.Fatalf("RevokeKey: %v", err)
	}
	var names []string
	for _, c := range got {
		names = append(names, c.Name)
		if c.State != storage.StateRevoked || !c.Changed.Equal(now) {
			e.t.Errorf("RevokeKey returned %q in state %s changed %v", c.Name, c.State, c.Changed)
		}
	}
	if fmt.Sprint(names) != fmt.Sprint([]string{"laptop (renewed)", "laptop", "laptop old"}) {
		e.t.Fatalf("RevokeKey revoked %q; want the named record, then the account's other records of its key, oldest first", names)
	}
	for _, c := range []*storage.Cert{first, off, renewed} {
		if s := e.find(c.Fingerprint).State; s != storage.StateRevoked {
			e.t.Errorf("%q is %s after its key was revoked", c.Name, s)
		}
	}
	for _, c := range []*storage.Cert{phone, bobs, junk} {
		if s := e.find(c.Fingerprint).State; s != storage.StateActive {
			e.t.Errorf("%s %q is %s; another key or account must be left alone", c.Account, c.Name, s)
		}
	}
	es := e.audit(alice, 3)
	checkAudit(e.t, es, []storage.AuditEntry{
		entry(now, "alice@example.org/phone", storage.ActionRevoke, off),
		entry(now, "alice@example.org/phone", storage.ActionRevoke, first),
		entry(now, "alice@example.org/phone", storage.ActionRevoke, renewed),
	})

	before := e.snapshot()
	_, err = e.s.RevokeKey(e.ctx, alice, "laptop", "storetest")
	wantErr(e.t, "RevokeKey of a revoked name", err, storage.ErrNotFound)
	e.unchanged(before, "RevokeKey of a revoked name")
}

// testRevokeKeyBySetState: SetState and SetStateByFingerprint revoke the
// key too; disabling changes one record only.
func testRevokeKeyBySetState(e *env) {
	k := newKey()
	a := e.add(newKeyCert(alice, "a", k), storage.AddOptions{})
	b := e.add(newKeyCert(alice, "b", k), storage.AddOptions{})
	e.setState(alice, "a", storage.StateDisabled)
	if s := e.find(b.Fingerprint).State; s != storage.StateActive {
		e.t.Fatalf("disabling a changed b to %s", s)
	}
	e.setState(alice, "b", storage.StateRevoked)
	if s := e.find(a.Fingerprint).State; s != storage.StateRevoked {
		e.t.Fatalf("SetState(revoked) left a record of the same key %s", s)
	}

	k2 := newKey()
	c := e.add(newKeyCert(alice, "c", k2), storage.AddOptions{})
	d := e.add(newKeyCert(alice, "d", k2), storage.AddOptions{})
	if _, err := e.s.SetStateByFingerprint(e.ctx, c.Fingerprint, storage.StateRevoked, "cli"); err != nil {
		e.t.Fatal(err)
	}
	if s := e.find(d.Fingerprint).State; s != storage.StateRevoked {
		e.t.Fatalf("SetStateByFingerprint(revoked) left a record of the same key %s", s)
	}
}

// testRenews: an insert that renews a record happens only while that
// record is the account's and active.
func testRenews(e *env) {
	k := newKey()
	prev := e.add(newKeyCert(alice, "laptop", k), storage.AddOptions{})
	e.add(newKeyCert(alice, "laptop (renewed 1)", k), storage.AddOptions{Renews: prev.Fingerprint})
	off := e.add(newKeyCert(alice, "off", k), storage.AddOptions{})
	e.setState(alice, "off", storage.StateDisabled)
	bobs := e.add(newKeyCert(bob, "bobs", k), storage.AddOptions{})
	gone := e.addNew(alice, "gone")
	e.setState(alice, "gone", storage.StateRevoked)
	for _, tc := range []struct {
		name   string
		renews storage.Fingerprint
	}{
		{"disabled", off.Fingerprint},
		{"revoked", gone.Fingerprint},
		{"another-account", bobs.Fingerprint},
		{"unknown", storage.FingerprintOf([]byte("nosuch"))},
	} {
		before := e.snapshot()
		err := e.s.AddCert(e.ctx, newKeyCert(alice, "renewal "+tc.name, k), storage.AddOptions{Renews: tc.renews})
		wantErr(e.t, "AddCert renewing a record that is "+tc.name, err, storage.ErrTransition)
		e.unchanged(before, "AddCert renewing a record that is "+tc.name)
	}
}

// testConcurrentRevokeRenew: a revocation and a renewal of the same record
// racing each other never leave an active record of the key: either the
// renewal is stored first and revoked with the key, or it is refused.
func testConcurrentRevokeRenew(e *env) {
	for i := range 20 {
		k := newKey()
		name := fmt.Sprintf("laptop %d", i)
		prev := e.add(newKeyCert(alice, name, k), storage.AddOptions{})
		var wg sync.WaitGroup
		var addErr, revErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			addErr = e.s.AddCert(e.ctx, newKeyCert(alice, name+" (renewed)", k), storage.AddOptions{Renews: prev.Fingerprint})
		}()
		go func() {
			defer wg.Done()
			_, revErr = e.s.RevokeKey(e.ctx, alice, name, "storetest")
		}()
		wg.Wait()
		if revErr != nil {
			e.t.Fatalf("RevokeKey: %v", revErr)
		}
		if addErr != nil && !errors.Is(addErr, storage.ErrTransition) {
			e.t.Fatalf("AddCert: %v", addErr)
		}
		for _, c := range e.list(alice, storage.StateActive) {
			if kh, _ := storage.KeyHashOf(c.DER); kh == mustKeyHash(e, prev.DER) {
				e.t.Fatalf("round %d: %q is active after its key was revoked", i, c.Name)
			}
		}
	}
}

func mustKeyHash(e *env, der []byte) storage.KeyHash {
	e.t.Helper()
	kh, ok := storage.KeyHashOf(der)
	if !ok {
		e.t.Fatal("KeyHashOf: not a certificate")
	}
	return kh
}
