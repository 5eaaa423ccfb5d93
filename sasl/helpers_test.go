package sasl_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"encoding/asn1"
	"fmt"
	"sync"
	"testing"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// memFinder is an in-memory sasl.CertFinder.
type memFinder struct {
	mu    sync.RWMutex
	certs map[storage.Fingerprint]*storage.Cert
}

var _ sasl.CertFinder = (*memFinder)(nil)

func newMemFinder() *memFinder {
	return &memFinder{certs: make(map[storage.Fingerprint]*storage.Cert)}
}

func (m *memFinder) FindCertByFingerprint(_ context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c, ok := m.certs[fp]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", fp, storage.ErrNotFound)
	}
	cp := *c
	return &cp, nil
}

// add stores der for account in state st with the forced resource res.
func (m *memFinder) add(der []byte, account string, st storage.State, res string) *storage.Cert {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := &storage.Cert{
		ID:          int64(len(m.certs) + 1),
		Account:     account,
		Name:        fmt.Sprintf("cert%d", len(m.certs)+1),
		DER:         bytes.Clone(der),
		Fingerprint: storage.FingerprintOf(der),
		State:       st,
		Resource:    res,
	}
	m.certs[c.Fingerprint] = c
	return c
}

// finderFunc adapts a function to sasl.CertFinder (fault injection).
type finderFunc func(context.Context, storage.Fingerprint) (*storage.Cert, error)

func (f finderFunc) FindCertByFingerprint(ctx context.Context, fp storage.Fingerprint) (*storage.Cert, error) {
	return f(ctx, fp)
}

// resign rewrites the signature algorithm of the certificate der to alg
// and signs it again with key over a digest made with h. It builds
// certificates crypto/x509 refuses to sign (MD5).
func resign(tb testing.TB, der []byte, key *rsa.PrivateKey, alg asn1.ObjectIdentifier, h crypto.Hash) []byte {
	tb.Helper()
	in := cryptobyte.String(der)
	var cert, tbs cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		tb.Fatal("resign: bad certificate")
	}
	algID := func(b *cryptobyte.Builder) {
		b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(alg)
			b.AddASN1NULL()
		})
	}
	var tb2 cryptobyte.Builder
	tb2.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		var elem cryptobyte.String
		var tag cbasn1.Tag
		for i := 0; !tbs.Empty(); i++ {
			if !tbs.ReadAnyASN1Element(&elem, &tag) {
				b.SetError(fmt.Errorf("resign: bad TBS element %d", i))
				return
			}
			// [0] version, serialNumber, signature AlgorithmIdentifier, ...
			if i == 2 {
				algID(b)
				continue
			}
			b.AddBytes(elem)
		}
	})
	newTBS, err := tb2.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	hh := h.New()
	hh.Write(newTBS)
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, h, hh.Sum(nil))
	if err != nil {
		tb.Fatal(err)
	}
	var out cryptobyte.Builder
	out.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(newTBS)
		algID(b)
		b.AddASN1BitString(sig)
	})
	return out.BytesOrPanic()
}

// concat joins byte slices.
func concat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
