// Package storecopy copies a whole certificate store into another one
// (`saslcert store copy`, e.g. from SQLite to PostgreSQL) and proves the
// copy: per table, the row count and a SHA-256 digest over a canonical
// encoding of the rows read from the source (in the same pass that feeds
// the target) must equal those read back from the target after the commit.
//
// The canonical encoding is backend-independent: each row is its fields in
// a fixed order (see encode), integers as 8-byte big-endian, strings and
// byte strings as an 8-byte big-endian length and the bytes, booleans as
// one byte 0 or 1, times as Unix microseconds (UTC). A table's digest is the
// SHA-256 of its rows' encodings in export order.
package storecopy

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// TableSum is the row count and digest of one table.
type TableSum struct {
	Table  storage.Table
	Rows   int64
	SHA256 [sha256.Size]byte
}

// String shows the sum as "certs: 12 rows, sha256:…".
func (s TableSum) String() string {
	return fmt.Sprintf("%s: %d rows, sha256:%s", s.Table, s.Rows, hex.EncodeToString(s.SHA256[:]))
}

// Summer computes the TableSums of a stream of rows. The zero value is
// ready; it is not safe for concurrent use.
type Summer struct {
	h   map[storage.Table]hash.Hash
	n   map[storage.Table]int64
	buf []byte
}

// Add counts r and adds its canonical encoding to its table's digest.
func (s *Summer) Add(r storage.Row) {
	if s.h == nil {
		s.h = make(map[storage.Table]hash.Hash)
		s.n = make(map[storage.Table]int64)
	}
	t := storage.RowTable(r)
	h := s.h[t]
	if h == nil {
		h = sha256.New()
		s.h[t] = h
	}
	s.buf = encode(s.buf[:0], r)
	h.Write(s.buf)
	s.n[t]++
}

// Sums returns one TableSum per table of storage.Tables (an empty table
// has 0 rows and the digest of no bytes).
func (s *Summer) Sums() []TableSum {
	out := make([]TableSum, 0, len(storage.Tables))
	for _, t := range storage.Tables {
		ts := TableSum{Table: t, Rows: s.n[t]}
		if h := s.h[t]; h != nil {
			h.Sum(ts.SHA256[:0])
		} else {
			ts.SHA256 = sha256.Sum256(nil)
		}
		out = append(out, ts)
	}
	return out
}

func putInt(b []byte, v int64) []byte  { return binary.BigEndian.AppendUint64(b, uint64(v)) }
func putBytes(b, v []byte) []byte      { return append(putInt(b, int64(len(v))), v...) }
func putStr(b []byte, v string) []byte { return append(putInt(b, int64(len(v))), v...) }
func putTime(b []byte, t time.Time) []byte {
	return putInt(b, t.UnixMicro())
}
func putBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// encode appends the canonical encoding of r to b.
func encode(b []byte, r storage.Row) []byte {
	switch r := r.(type) {
	case *storage.Cert:
		b = putInt(b, r.ID)
		b = putStr(b, r.Account)
		b = putStr(b, r.Name)
		b = putBytes(b, r.DER)
		b = putBytes(b, r.Fingerprint[:])
		b = putStr(b, string(r.State))
		b = putBool(b, r.NoCertManagement)
		b = putStr(b, r.Resource)
		b = putTime(b, r.NotBefore)
		b = putTime(b, r.NotAfter)
		b = putStr(b, r.Issuer)
		b = putStr(b, string(r.Source))
		b = putTime(b, r.Created)
		b = putTime(b, r.Changed)
	case *storage.AuditEntry:
		b = putInt(b, r.ID)
		b = putTime(b, r.Time)
		b = putStr(b, r.Actor)
		b = putStr(b, string(r.Action))
		b = putStr(b, r.Account)
		b = putStr(b, r.Name)
		b = putBytes(b, r.Fingerprint[:])
	case *storage.Tombstone:
		b = putStr(b, r.Account)
		b = putTime(b, r.Deleted)
		b = putStr(b, r.Actor)
	case *storage.PassedOnMark:
		b = putStr(b, r.Watcher)
		b = putInt(b, r.AuditID)
		b = putTime(b, r.Seen)
	}
	return b
}

// Digest reads every row of src and returns its TableSums.
func Digest(ctx context.Context, src storage.Exporter) ([]TableSum, error) {
	var s Summer
	if err := src.Export(ctx, func(r storage.Row) error { s.Add(r); return nil }); err != nil {
		return nil, err
	}
	return s.Sums(), nil
}

// Target is a store a copy writes into and reads back.
type Target interface {
	storage.Importer
	storage.Exporter
}

// Options qualify Copy.
type Options struct {
	// Replace deletes what the target holds (storage.Importer's replace);
	// without it a target that is not empty is refused
	// (storage.ErrNotEmpty).
	Replace bool
	// Row, if set, is called after each row is passed to the target
	// (progress).
	Row func()
}

// Report is what a successful Copy copied: the sums of the source, equal
// to the target's.
type Report struct {
	Tables []TableSum
}

// MismatchError: the target read back differs from what was read from the
// source. The copy is committed; do not use the target.
type MismatchError struct {
	Source, Target TableSum
}

func (e *MismatchError) Error() string {
	return fmt.Sprintf("storecopy: the copy differs from the source: source %s; target %s", e.Source, e.Target)
}

// ErrSameStore: the source and the target are the same store.
var ErrSameStore = errors.New("storecopy: source and target are the same store")

// Copy copies every row of src into dst in one transaction of dst
// (storage.Importer.Import), summing the rows on the way, then reads dst
// back and compares its sums with the source's. Errors: the Importer's
// (storage.ErrNotEmpty, ...), the Exporter's, a *MismatchError.
func Copy(ctx context.Context, src storage.Exporter, dst Target, o Options) (Report, error) {
	var s Summer
	err := dst.Import(ctx, o.Replace, func(fn storage.RowFunc) error {
		return src.Export(ctx, func(r storage.Row) error {
			s.Add(r)
			if err := fn(r); err != nil {
				return err
			}
			if o.Row != nil {
				o.Row()
			}
			return nil
		})
	})
	if err != nil {
		return Report{}, err
	}
	want := s.Sums()
	got, err := Digest(ctx, dst)
	if err != nil {
		return Report{}, fmt.Errorf("storecopy: reading the target back: %w", err)
	}
	for i := range want {
		if want[i] != got[i] {
			return Report{}, &MismatchError{Source: want[i], Target: got[i]}
		}
	}
	return Report{Tables: want}, nil
}
