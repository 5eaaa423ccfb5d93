package sqlite

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/saslcert/saslcert/storage"
)

// TestQueryPlans checks that no hot statement scans a whole table.
func TestQueryPlans(t *testing.T) {
	db, err := Open(t.Context(), filepath.Join(t.TempDir(), "certs.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fp := make([]byte, 32)
	type planCase struct {
		query string
		args  []any
		index string
	}
	search := func(q string, args []any) planCase { return planCase{q, args, ""} }
	certQ, certArgs := certSearch(storage.CertQuery{Domain: "example.org", States: []storage.State{storage.StateActive}, Limit: 10})
	auditQ, auditArgs := auditSearch(storage.AuditQuery{Domain: "example.org", Actor: "api:hr", Limit: 10})
	cs, as := search(certQ, certArgs), search(auditQ, auditArgs)
	cs.index, as.index = "certs_domain", "audit_domain"
	for _, tc := range []planCase{
		cs, as,
		{`SELECT ` + certCols + ` FROM certs WHERE fingerprint = ?`, []any{fp}, "certs_fingerprint"},
		{`SELECT EXISTS (SELECT 1 FROM certs WHERE fingerprint = ?)`, []any{fp}, "certs_fingerprint"},
		{`SELECT ` + certCols + ` FROM certs WHERE account = ? ORDER BY id`, []any{"a"}, "certs_account"},
		{`SELECT count(*) FROM certs WHERE account = ? AND state = 'active'`, []any{"a"}, "certs_active_name"},
		{`UPDATE certs SET state = ?, changed = ? WHERE account = ? AND name = ? AND state = 'active'`, []any{"revoked", 0, "a", "n"}, "certs_active_name"},
		{`SELECT ` + auditCols + ` FROM audit WHERE account = ? ORDER BY id DESC LIMIT ?`, []any{"a", 10}, "audit_account"},
	} {
		rows, err := db.r.Query("EXPLAIN QUERY PLAN "+tc.query, tc.args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			if err := rows.Scan(&id, &parent, &notused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if !strings.Contains(p, tc.index) || strings.Contains(p, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s\nwant a search using %s, no sort", tc.query, p, tc.index)
		}
	}
}
