// Package storage defines the certificate records saslcert keeps, the Store
// interface every backend implements, and the errors that interface returns.
//
// Backends live in sub-packages (storage/sqlite, later storage/postgres) and
// must pass the contract suite in storage/storetest.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Fingerprint is the SHA-256 digest of a certificate's DER encoding. It is the
// identity of a certificate everywhere in saslcert; SHA-1 is never used.
type Fingerprint [sha256.Size]byte

// FingerprintOf returns the fingerprint of the DER-encoded certificate der.
func FingerprintOf(der []byte) Fingerprint { return sha256.Sum256(der) }

// fingerprintPrefix introduces the hex digest in the text form.
const fingerprintPrefix = "sha256:"

// String returns the text form "sha256:" followed by 64 lowercase hex digits.
func (f Fingerprint) String() string { return fingerprintPrefix + hex.EncodeToString(f[:]) }

// ParseFingerprint parses the text form produced by String. The prefix is
// required; hex digits may be upper or lower case and may be separated by
// colons (the form openssl prints).
func ParseFingerprint(s string) (Fingerprint, error) {
	var f Fingerprint
	rest, ok := strings.CutPrefix(strings.ToLower(strings.TrimSpace(s)), fingerprintPrefix)
	if !ok {
		return f, fmt.Errorf("storage: fingerprint %q: want the form sha256:<64 hex digits>", s)
	}
	b, err := hex.DecodeString(strings.ReplaceAll(rest, ":", ""))
	if err != nil || len(b) != len(f) {
		return f, fmt.Errorf("storage: fingerprint %q: want sha256: followed by 64 hex digits", s)
	}
	copy(f[:], b)
	return f, nil
}

// State is the life-cycle state of a certificate record.
type State string

// The states of a record. Only active records authenticate. A record moves
// active -> disabled, active -> revoked or disabled -> revoked, never back.
const (
	StateActive   State = "active"
	StateDisabled State = "disabled"
	StateRevoked  State = "revoked"
)

// Valid reports whether s is one of the defined states.
func (s State) Valid() bool {
	return s == StateActive || s == StateDisabled || s == StateRevoked
}

// Source says how a certificate came to be stored.
type Source string

// The sources of a record.
const (
	SourceUpload   Source = "upload"   // uploaded by the user (XEP-0257 append) or an admin
	SourceEnrolled Source = "enrolled" // issued through a CA by saslcert's enroll package
)

// Cert is one stored certificate record.
type Cert struct {
	ID               int64       // assigned by the store
	Account          string      // owner: normalised bare JID (RFC 7622), e.g. "alice@example.org"
	Name             string      // the XEP-0257 name, unique among the account's active records
	DER              []byte      // the certificate exactly as uploaded
	Fingerprint      Fingerprint // SHA-256 of DER; unique across all records, whatever their state
	State            State
	NoCertManagement bool      // sessions that logged in with it may not append, disable or revoke
	Resource         string    // forced resource from a full-JID xmppAddr, "" if none
	NotBefore        time.Time // validity, copied from the certificate
	NotAfter         time.Time
	Issuer           string // issuer distinguished name, for display
	Source           Source
	Created          time.Time // set by the store from its clock
	Changed          time.Time // set by the store from its clock on every state change
}

// Action names a change recorded in the audit log.
type Action string

// The audited actions.
const (
	ActionAdd     Action = "add"
	ActionDisable Action = "disable"
	ActionRevoke  Action = "revoke"
)

// AuditEntry is one row of the audit log: who changed what, and when.
type AuditEntry struct {
	ID          int64
	Time        time.Time
	Actor       string // who asked: a full JID, "cli", "api:<client>", "enroll", ...
	Action      Action
	Account     string
	Name        string
	Fingerprint Fingerprint
}

// PassedOnMark says how far one watcher (a running component) has passed
// the audit log on to the server, and when it last said so.
type PassedOnMark struct {
	Watcher string
	AuditID int64     // every entry with an ID up to this one was passed on
	Seen    time.Time // set by the store from its clock
}

// AddOptions qualify Store.AddCert.
type AddOptions struct {
	// Actor is recorded in the audit log.
	Actor string
	// MaxActive, if > 0, is the number of active records the account may have
	// after the insert; checked in the same transaction as the insert.
	MaxActive int
	// Renews, if not zero, is the fingerprint of the record the new one
	// renews (the same key, a later expiry): the insert happens only if
	// that record is the same account's and still active, checked in the
	// same transaction, so that a certificate disabled or revoked while
	// its renewal was being issued is not renewed (ErrTransition).
	Renews Fingerprint
	// MaxHistory, if > 0, is the number of disabled and revoked records the
	// account may keep when a record is added. In the same transaction,
	// before counting, the account's disabled and revoked records that
	// expired before ExpiredBefore are deleted (an expired certificate can
	// neither log in nor be stored again, so its fingerprint need not stay
	// taken); if more than MaxHistory remain, the add fails with
	// ErrHistoryFull. Records that have not expired are never deleted: a
	// revoked fingerprint stays taken while it could still be used.
	MaxHistory    int
	ExpiredBefore time.Time
}

// RevokeAccountOptions qualify Store.RevokeAccount.
type RevokeAccountOptions struct {
	// Actor is recorded in the audit log (and with the tombstone).
	Actor string
	// Deleted writes the account's tombstone: the server deleted the
	// account, so no certificate may be added for it until the name is
	// registered again (ClearTombstone).
	Deleted bool
}

// PruneOptions say what Store.Prune deletes.
type PruneOptions struct {
	// ExpiredBefore: disabled and revoked records whose NotAfter is before
	// it are deleted (zero: none).
	ExpiredBefore time.Time
	// AuditBefore: audit entries older than it are deleted (zero: none).
	AuditBefore time.Time
}

// PruneResult counts what Store.Prune deleted.
type PruneResult struct {
	Certs, Audit int64
}

// Errors returned by Store methods. Backends wrap them (test with errors.Is),
// adding detail; they never return a driver error that is not wrapped in one
// of these or in a plain error describing an internal failure.
var (
	// ErrNotFound: no record matches.
	ErrNotFound = errors.New("storage: not found")
	// ErrNameTaken: the account already has an active record with that name.
	ErrNameTaken = errors.New("storage: name already in use")
	// ErrDuplicate: a record (of any account, in any state) has that fingerprint.
	ErrDuplicate = errors.New("storage: certificate already stored")
	// ErrLimit: the insert would exceed AddOptions.MaxActive.
	ErrLimit = errors.New("storage: too many certificates")
	// ErrHistoryFull: the account keeps more than AddOptions.MaxHistory
	// disabled or revoked records that have not expired.
	ErrHistoryFull = errors.New("storage: too many disabled or revoked certificates kept")
	// ErrTransition: the requested state change is not allowed (e.g. revoked -> disabled).
	ErrTransition = errors.New("storage: state change not allowed")
	// ErrInvalid: the record or argument breaks a precondition (empty account or
	// name, unknown state, DER whose fingerprint does not match, ...).
	ErrInvalid = errors.New("storage: invalid record")
	// ErrAccountDeleted: the account is marked deleted (a tombstone written
	// by RevokeAccount with Deleted set): no certificate may be added for it
	// until ClearTombstone.
	ErrAccountDeleted = errors.New("storage: account deleted")
	// ErrUnavailable: the store cannot serve now (locked beyond the busy
	// timeout, disk full, I/O error, closed). Nothing was changed; the caller
	// may retry later. Protocols map it to a "wait" error or
	// temporary-auth-failure.
	ErrUnavailable = errors.New("storage: unavailable")
)

// Store keeps certificate records and their audit log.
//
// Every method is safe for concurrent use. A method that returns a nil error
// after a change has made that change durable (it survives a kill -9 of the
// process); a method that returns an error has changed nothing. Accounts are
// compared as given: callers pass normalised bare JIDs. Records are copied in
// and out: callers may keep and change what they pass and get. "Oldest first"
// means in ID order. An empty actor is allowed.
//
// When several errors apply to one AddCert, ErrInvalid is reported before
// ErrAccountDeleted, ErrAccountDeleted before ErrDuplicate, ErrDuplicate before ErrNameTaken, ErrNameTaken before
// ErrLimit, and ErrLimit before ErrHistoryFull. A cancelled ctx gives an error wrapping context.Canceled; an
// expired deadline gives one wrapping both context.DeadlineExceeded and
// ErrUnavailable. Either way nothing was changed.
type Store interface {
	// AddCert inserts c as a new active record and records ActionAdd in the
	// audit log, in one transaction. It sets c.ID, c.State, c.Created and
	// c.Changed. The account's tombstone (see RevokeAccount) is checked in
	// the same transaction. Errors: ErrInvalid, ErrAccountDeleted,
	// ErrNameTaken, ErrDuplicate, ErrLimit, ErrHistoryFull, ErrUnavailable.
	AddCert(ctx context.Context, c *Cert, opts AddOptions) error

	// FindCertByFingerprint returns the record with fingerprint fp, whatever
	// its state. Errors: ErrNotFound, ErrUnavailable.
	FindCertByFingerprint(ctx context.Context, fp Fingerprint) (*Cert, error)

	// ListCerts returns the account's records whose state is one of states
	// (all states if none are given), oldest first. An account without
	// records gives an empty slice and no error. Errors: ErrUnavailable.
	ListCerts(ctx context.Context, account string, states ...State) ([]*Cert, error)

	// SetState moves the account's active record called name to state to
	// (StateDisabled or StateRevoked), frees the name, records the action in
	// the audit log and returns the updated record. Errors: ErrNotFound (no
	// active record of that name), ErrInvalid (to is not disabled/revoked),
	// ErrUnavailable.
	//
	// A revocation revokes the key, not one certificate: in the same
	// transaction every other record of the account for the same key
	// (KeyHashOf its DER: renewals, earlier certificates) that is not
	// revoked yet is revoked too, each with its own ActionRevoke entry by
	// actor (RevokeKey returns them all). Disabling changes one record.
	SetState(ctx context.Context, account, name string, to State, actor string) (*Cert, error)

	// SetStateByFingerprint is SetState for the record with fingerprint fp, in
	// any state it may leave: active -> disabled|revoked, disabled -> revoked
	// (a revocation revokes the key, as SetState's does). Setting the state
	// it already has is a no-op that returns the record.
	// Errors: ErrNotFound, ErrTransition, ErrInvalid, ErrUnavailable.
	SetStateByFingerprint(ctx context.Context, fp Fingerprint, to State, actor string) (*Cert, error)

	// RevokeKey is SetState(ctx, account, name, StateRevoked, actor) that
	// returns every record it revoked: the named one first, then the other
	// records of the account for the same key, oldest first. Callers that
	// act on a revocation (closing sessions, telling the CA) act on each.
	// Errors: as SetState.
	RevokeKey(ctx context.Context, account, name, actor string) ([]*Cert, error)

	// Audit returns up to limit audit entries for account ("" for all
	// accounts), newest first; limit <= 0 means no limit. Errors: ErrUnavailable.
	Audit(ctx context.Context, account string, limit int) ([]AuditEntry, error)

	// AuditSince returns up to limit audit entries (of all accounts) whose ID
	// is greater than afterID, oldest first; limit <= 0 means no limit. IDs
	// grow with every entry, so a reader can follow the log by passing the
	// last ID it has seen. Errors: ErrUnavailable.
	AuditSince(ctx context.Context, afterID int64, limit int) ([]AuditEntry, error)

	// RevokeAccount moves every active or disabled record of account to
	// StateRevoked (auditing each as ActionRevoke by opts.Actor) and, if
	// opts.Deleted, writes the account's tombstone, all in one transaction:
	// an AddCert for the account commits either before it (and its record is
	// revoked here) or after it (and, with a tombstone, fails with
	// ErrAccountDeleted). It returns the records it revoked, as they are now,
	// oldest first (empty if there were none; writing the tombstone still
	// happens). Writing a tombstone that exists keeps the first one. Errors:
	// ErrInvalid (empty account), ErrUnavailable.
	RevokeAccount(ctx context.Context, account string, opts RevokeAccountOptions) ([]*Cert, error)

	// ClearTombstone removes the account's tombstone, because the name was
	// registered again; it reports whether there was one. Errors: ErrInvalid
	// (empty account), ErrUnavailable.
	ClearTombstone(ctx context.Context, account string) (bool, error)

	// Tombstones returns the accounts that have a tombstone, in ascending
	// (byte-wise) order. Errors: ErrUnavailable.
	Tombstones(ctx context.Context) ([]string, error)

	// Accounts returns up to limit accounts that have at least one active or
	// disabled record and sort (byte-wise) after after, in ascending order;
	// "" starts at the first. A reader pages through all of them by passing
	// the last account it got, holding one page at a time. Errors:
	// ErrInvalid (limit <= 0), ErrUnavailable.
	Accounts(ctx context.Context, after string, limit int) ([]string, error)

	// MarkPassedOn records that the watcher (a running component, named by
	// its JID) has passed on every audit entry up to auditID to the server,
	// and that it was alive now: the mark's Seen is set from the store's
	// clock. The stored AuditID never goes back: a smaller auditID only
	// refreshes Seen. Errors: ErrInvalid (empty watcher), ErrUnavailable.
	MarkPassedOn(ctx context.Context, watcher string, auditID int64) error

	// PassedOn returns every watcher's mark, ordered by watcher name.
	// Errors: ErrUnavailable.
	PassedOn(ctx context.Context) ([]PassedOnMark, error)

	// Prune deletes, in one transaction, what opts names: expired disabled
	// and revoked records (never active ones) and old audit entries. It
	// bounds what the store keeps over time; run it periodically. Errors:
	// ErrUnavailable.
	Prune(ctx context.Context, opts PruneOptions) (PruneResult, error)

	// WalkCerts calls fn for every record, in ID order, stopping at and
	// returning the first error fn returns. Errors: ErrUnavailable.
	WalkCerts(ctx context.Context, fn func(*Cert) error) error

	// Close releases the store. Methods called after Close return ErrUnavailable.
	Close() error
}
