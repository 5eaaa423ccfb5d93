package storetest

import (
	"errors"
	"fmt"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// testSearchCerts checks storage.SearchCerts (the backend's Searcher if it
// has one, else the walk) against CertQuery.Match over every record, paging
// through the answers.
func testSearchCerts(e *env) {
	for i := range 7 {
		e.addNew(fmt.Sprintf("u%d@example.org", i%3), fmt.Sprintf("cert %d", i))
		e.addNew(fmt.Sprintf("u%d@example.net", i%2), fmt.Sprintf("cert %d", i))
	}
	e.addNew("ex@example.org.evil", "suffix domain")
	e.setState("u0@example.org", "cert 0", storage.StateDisabled)
	e.setState("u1@example.org", "cert 1", storage.StateRevoked)
	late := newCert("u2@example.org", "late")
	late.NotAfter = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	e.add(late, storage.AddOptions{})
	all := e.walk()
	queries := []struct {
		name string
		q    storage.CertQuery
	}{
		{"domain", storage.CertQuery{Domain: "example.org"}},
		{"other domain", storage.CertQuery{Domain: "example.net"}},
		{"suffix is not the domain", storage.CertQuery{Domain: "example.org.evil"}},
		{"no such domain", storage.CertQuery{Domain: "example.com"}},
		{"account", storage.CertQuery{Domain: "example.org", Account: "u1@example.org"}},
		{"states", storage.CertQuery{Domain: "example.org", States: []storage.State{storage.StateDisabled, storage.StateRevoked}}},
		{"name", storage.CertQuery{Domain: "example.org", NameContains: "t 1"}},
		{"expiry window", storage.CertQuery{Domain: "example.org", ExpiresAfter: time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"expires before", storage.CertQuery{Domain: "example.org", ExpiresBefore: late.NotAfter}},
	}
	for _, tc := range queries {
		var want []int64
		for _, c := range all {
			if tc.q.Match(c) {
				want = append(want, c.ID)
			}
		}
		for _, limit := range []int{1, 2, 100} {
			q := tc.q
			q.Limit = limit
			var got []int64
			for range 50 {
				page, err := storage.SearchCerts(e.ctx, e.s, q)
				if err != nil {
					e.t.Fatalf("%s: SearchCerts(%+v): %v", tc.name, q, err)
				}
				if len(page) > limit {
					e.t.Fatalf("%s: %d records, limit %d", tc.name, len(page), limit)
				}
				for _, c := range page {
					got = append(got, c.ID)
				}
				if len(page) < limit {
					break
				}
				q.AfterID = page[len(page)-1].ID
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				e.t.Errorf("%s, limit %d: IDs %v, want %v", tc.name, limit, got, want)
			}
		}
	}
	for _, bad := range []storage.CertQuery{{Limit: 1}, {Domain: "example.org"}} {
		if _, err := storage.SearchCerts(e.ctx, e.s, bad); !errors.Is(err, storage.ErrInvalid) {
			e.t.Errorf("SearchCerts(%+v): %v, want ErrInvalid", bad, err)
		}
	}
}

// testSearchAudit checks storage.SearchAudit against AuditQuery.Match.
func testSearchAudit(e *env) {
	e.addNew("a@example.org", "one")
	since := e.clk.advance()
	e.add(newCert("b@example.org", "two"), storage.AddOptions{Actor: "api:hr"})
	e.addNew("a@example.net", "three")
	e.clk.advance()
	if _, err := e.s.RevokeAccount(e.ctx, "a@example.org", storage.RevokeAccountOptions{Actor: "api:hr"}); err != nil {
		e.t.Fatal(err)
	}
	all := e.audit("", 0)
	queries := []struct {
		name string
		q    storage.AuditQuery
	}{
		{"domain", storage.AuditQuery{Domain: "example.org"}},
		{"other domain", storage.AuditQuery{Domain: "example.net"}},
		{"account", storage.AuditQuery{Domain: "example.org", Account: "a@example.org"}},
		{"actor", storage.AuditQuery{Domain: "example.org", Actor: "api:hr"}},
		{"since", storage.AuditQuery{Domain: "example.org", Since: since}},
	}
	for _, tc := range queries {
		var want []int64
		for i := len(all) - 1; i >= 0; i-- { // Audit is newest first
			if tc.q.Match(all[i]) {
				want = append(want, all[i].ID)
			}
		}
		q := tc.q
		q.Limit = 1
		var got []int64
		for range 50 {
			page, err := storage.SearchAudit(e.ctx, e.s, q)
			if err != nil {
				e.t.Fatalf("%s: SearchAudit: %v", tc.name, err)
			}
			if len(page) == 0 {
				break
			}
			got = append(got, page[0].ID)
			q.AfterID = page[0].ID
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			e.t.Errorf("%s: IDs %v, want %v", tc.name, got, want)
		}
	}
	if _, err := storage.SearchAudit(e.ctx, e.s, storage.AuditQuery{Limit: 1}); !errors.Is(err, storage.ErrInvalid) {
		e.t.Errorf("SearchAudit without a domain: %v, want ErrInvalid", err)
	}
}
