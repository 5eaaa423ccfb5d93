package storage

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Table names a table of a store as Exporter and Importer move it. Every
// backend keeps the same four tables, whatever it calls them inside.
type Table string

// The tables, in the order Export yields them and Import takes them.
const (
	TableCerts      Table = "certs"      // rows: *Cert, by ID
	TableAudit      Table = "audit"      // rows: *AuditEntry, by ID
	TableTombstones Table = "tombstones" // rows: *Tombstone, by account (byte-wise)
	TableWatchers   Table = "watchers"   // rows: *PassedOnMark, by watcher (byte-wise)
)

// Tables lists every table, in export order.
var Tables = []Table{TableCerts, TableAudit, TableTombstones, TableWatchers}

// Tombstone is one account's tombstone (see Store.RevokeAccount).
type Tombstone struct {
	Account string
	Deleted time.Time
	Actor   string
}

// Row is one row of an export: a *Cert, *AuditEntry, *Tombstone or
// *PassedOnMark. RowTable names its table.
type Row interface{ rowTable() Table }

func (*Cert) rowTable() Table         { return TableCerts }
func (*AuditEntry) rowTable() Table   { return TableAudit }
func (*Tombstone) rowTable() Table    { return TableTombstones }
func (*PassedOnMark) rowTable() Table { return TableWatchers }

// RowTable returns the table r belongs to.
func RowTable(r Row) Table { return r.rowTable() }

// RowFunc receives the rows of an export, one at a time; it may keep them.
type RowFunc func(Row) error

// Exporter is implemented by stores whose whole contents can be read out
// (to copy a store: storage/storecopy).
type Exporter interface {
	// Export calls fn for every row of the store, read from one
	// consistent snapshot, table by table in Tables order, each table in
	// the order its Table constant names; it streams (holds no table in
	// memory) and stops at fn's first error, which it returns. Every
	// field is exported as stored, IDs included. Errors: ErrUnavailable,
	// or fn's.
	Export(ctx context.Context, fn RowFunc) error

	// Count returns the number of rows of every table. Errors:
	// ErrUnavailable.
	Count(ctx context.Context) (map[Table]int64, error)
}

// Importer is implemented by stores that can take another store's whole
// contents.
type Importer interface {
	// Import fills the store, in one transaction, with the rows that rows
	// passes to the RowFunc it is given (rows is typically an Exporter's
	// Export bound to its context). Rows must come table by table in
	// Tables order and keep their IDs; the store's ID sequences continue
	// after the largest imported ID. Without replace the store must be
	// empty (ErrNotEmpty, naming the tables that are not); with replace
	// every row it held is deleted first, in the same transaction. Rows
	// are checked as the store's own writes check them (ErrInvalid naming
	// the table and row; a fingerprint or active name stored twice is
	// ErrDuplicate or ErrNameTaken). If rows or a check fails, nothing
	// is changed. Import writes no audit entries of its own: the audit
	// table is copied as it is. Errors: ErrNotEmpty, ErrInvalid,
	// ErrDuplicate, ErrNameTaken, ErrUnavailable, or rows'.
	Import(ctx context.Context, replace bool, rows func(RowFunc) error) error
}

// ErrNotEmpty: Importer.Import without replace found rows in the store.
var ErrNotEmpty = errors.New("storage: store not empty")

// TableOrder checks that rows come in Tables order: call Next with each
// row's table; it returns ErrInvalid when a table comes after a later one.
type TableOrder struct{ last int }

// Next checks t against the tables seen so far.
func (o *TableOrder) Next(t Table) error {
	for i, u := range Tables {
		if u != t {
			continue
		}
		if i < o.last {
			return &orderError{t: t, after: Tables[o.last]}
		}
		o.last = i
		return nil
	}
	return &orderError{t: t}
}

type orderError struct{ t, after Table }

func (e *orderError) Error() string {
	if e.after == "" {
		return "storage: import: unknown table " + string(e.t)
	}
	return "storage: import: rows of " + string(e.t) + " after rows of " + string(e.after) + " (want tables in storage.Tables order)"
}

func (e *orderError) Unwrap() error { return ErrInvalid }

// CheckRow checks what an Importer can check of a row before storing it:
// positive IDs, a state, CheckRecord for certificates, known actions,
// non-empty accounts and watchers. Errors wrap ErrInvalid.
func CheckRow(r Row) error {
	var why string
	switch r := r.(type) {
	case *Cert:
		switch {
		case r.ID <= 0:
			why = fmt.Sprintf("certificate id %d", r.ID)
		case r.State == "":
			why = fmt.Sprintf("certificate id %d: no state", r.ID)
		default:
			if err := CheckRecord(r, true); err != nil {
				return fmt.Errorf("certificate id %d: %w", r.ID, err)
			}
		}
	case *AuditEntry:
		switch {
		case r.ID <= 0:
			why = fmt.Sprintf("audit id %d", r.ID)
		case r.Action != ActionAdd && r.Action != ActionDisable && r.Action != ActionRevoke:
			why = fmt.Sprintf("audit id %d: unknown action %q", r.ID, r.Action)
		}
	case *Tombstone:
		if r.Account == "" {
			why = "tombstone of an empty account"
		}
	case *PassedOnMark:
		if r.Watcher == "" {
			why = "watcher with an empty name"
		}
	case nil:
		why = "nil row"
	}
	if why == "" {
		return nil
	}
	return fmt.Errorf("%w: %s", ErrInvalid, why)
}
