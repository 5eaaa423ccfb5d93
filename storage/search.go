package storage

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// CertQuery selects certificate records for SearchCerts: those of accounts
// of Domain that match every non-zero field, with an ID above AfterID, in ID
// order, at most Limit of them.
type CertQuery struct {
	// Domain is required: the records of accounts "<local>@Domain".
	Domain string
	// Account, if set, is one bare JID (of Domain).
	Account string
	// States, if not empty, are the states wanted.
	States []State
	// NameContains, if set, must be a substring of the record's name
	// (byte-wise, case-sensitive).
	NameContains string
	// ExpiresAfter and ExpiresBefore, if set, bound NotAfter:
	// ExpiresAfter <= NotAfter < ExpiresBefore.
	ExpiresAfter, ExpiresBefore time.Time
	// AfterID is where a page starts (0: at the first record).
	AfterID int64
	// Limit is the most records returned; it must be > 0.
	Limit int
}

// AuditQuery selects audit entries for SearchAudit: those about accounts of
// Domain that match every non-zero field, with an ID above AfterID, oldest
// first, at most Limit of them.
type AuditQuery struct {
	Domain  string    // required
	Account string    // one bare JID, if set
	Actor   string    // exact actor ("api:hr", "cli", a full JID), if set
	Since   time.Time // entries at or after this time, if set
	AfterID int64
	Limit   int // > 0
}

// Searcher is an optional interface of a Store: searches that the backend
// answers from its indexes. SearchCerts and SearchAudit (the functions) use
// it when the store has it and walk the store otherwise; both give the same
// answers (storetest checks a backend's against the walk).
type Searcher interface {
	// SearchCerts returns the records q selects. Errors: ErrInvalid (no
	// Domain, Limit <= 0), ErrUnavailable.
	SearchCerts(ctx context.Context, q CertQuery) ([]*Cert, error)
	// SearchAudit returns the audit entries q selects. Errors: ErrInvalid
	// (no Domain, Limit <= 0), ErrUnavailable.
	SearchAudit(ctx context.Context, q AuditQuery) ([]AuditEntry, error)
}

// errStop ends a walk once a page is full.
var errStop = errors.New("storage: page full")

// Check returns ErrInvalid if q cannot be run.
func (q CertQuery) Check() error {
	if q.Domain == "" || q.Limit <= 0 {
		return errors.Join(ErrInvalid, errors.New("storage: a certificate search needs a domain and a positive limit"))
	}
	return nil
}

// Match reports whether q selects c (AfterID and Limit aside): the one
// definition of the filter, used by the walk and by backends' tests.
func (q CertQuery) Match(c *Cert) bool {
	switch {
	case DomainOf(c.Account) != q.Domain,
		q.Account != "" && c.Account != q.Account,
		len(q.States) > 0 && !slices.Contains(q.States, c.State),
		q.NameContains != "" && !strings.Contains(c.Name, q.NameContains),
		!q.ExpiresAfter.IsZero() && c.NotAfter.Before(q.ExpiresAfter),
		!q.ExpiresBefore.IsZero() && !c.NotAfter.Before(q.ExpiresBefore):
		return false
	}
	return true
}

// Check returns ErrInvalid if q cannot be run.
func (q AuditQuery) Check() error {
	if q.Domain == "" || q.Limit <= 0 {
		return errors.Join(ErrInvalid, errors.New("storage: an audit search needs a domain and a positive limit"))
	}
	return nil
}

// Match reports whether q selects e (AfterID and Limit aside).
func (q AuditQuery) Match(e AuditEntry) bool {
	switch {
	case DomainOf(e.Account) != q.Domain,
		q.Account != "" && e.Account != q.Account,
		q.Actor != "" && e.Actor != q.Actor,
		!q.Since.IsZero() && e.Time.Before(q.Since):
		return false
	}
	return true
}

// DomainOf returns the domain of a bare JID account ("" if it has no "@").
func DomainOf(account string) string {
	_, d, ok := strings.Cut(account, "@")
	if !ok {
		return ""
	}
	return d
}

// SearchCerts runs q on s: through s's Searcher if it has one, otherwise by
// walking every record (WalkCerts; fine for small stores). Errors: as
// Searcher.SearchCerts.
func SearchCerts(ctx context.Context, s Store, q CertQuery) ([]*Cert, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if se, ok := s.(Searcher); ok {
		return se.SearchCerts(ctx, q)
	}
	out := []*Cert{}
	err := s.WalkCerts(ctx, func(c *Cert) error {
		if c.ID <= q.AfterID || !q.Match(c) {
			return nil
		}
		out = append(out, c)
		if len(out) == q.Limit {
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return out, nil
}

// auditPage is how many entries the audit walk reads per call.
const auditPage = 512

// SearchAudit runs q on s: through s's Searcher if it has one, otherwise by
// reading the log forward from q.AfterID (AuditSince). Errors: as
// Searcher.SearchAudit.
func SearchAudit(ctx context.Context, s Store, q AuditQuery) ([]AuditEntry, error) {
	if err := q.Check(); err != nil {
		return nil, err
	}
	if se, ok := s.(Searcher); ok {
		return se.SearchAudit(ctx, q)
	}
	out := []AuditEntry{}
	after := q.AfterID
	for {
		page, err := s.AuditSince(ctx, after, auditPage)
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if q.Match(e) {
				out = append(out, e)
				if len(out) == q.Limit {
					return out, nil
				}
			}
		}
		if len(page) < auditPage {
			return out, nil
		}
		after = page[len(page)-1].ID
	}
}
