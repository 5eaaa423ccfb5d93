package postgres

import (
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/saslcert/saslcert/storage"
)

// certCols are the certs columns in the order scanCert reads them.
const certCols = `id, account, name, der, fingerprint, state, no_cert_management,
	resource, not_before, not_after, issuer, source, created, changed`

const auditCols = `id, time, actor, action, account, name, fingerprint`

// scanCert reads one row of certCols.
func scanCert(r pgx.Row) (*storage.Cert, error) {
	c := new(storage.Cert)
	var state, source string
	var fp []byte
	err := r.Scan(&c.ID, &c.Account, &c.Name, &c.DER, &fp, &state, &c.NoCertManagement, &c.Resource,
		&c.NotBefore, &c.NotAfter, &c.Issuer, &source, &c.Created, &c.Changed)
	if err != nil {
		return nil, err
	}
	if len(fp) != len(c.Fingerprint) {
		return nil, fmt.Errorf("fingerprint column holds %d bytes, want %d", len(fp), len(c.Fingerprint))
	}
	copy(c.Fingerprint[:], fp)
	c.State, c.Source = storage.State(state), storage.Source(source)
	c.NotBefore, c.NotAfter, c.Created, c.Changed = c.NotBefore.UTC(), c.NotAfter.UTC(), c.Created.UTC(), c.Changed.UTC()
	return c, nil
}

// scanCerts reads every row of a certCols query.
func scanCerts(rows pgx.Rows, err error) ([]*storage.Cert, error) {
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*storage.Cert, error) { return scanCert(r) })
	if out == nil && err == nil {
		out = []*storage.Cert{}
	}
	return out, err
}

// scanAudit reads one row of auditCols.
func scanAudit(r pgx.CollectableRow) (storage.AuditEntry, error) {
	var e storage.AuditEntry
	var action string
	var fp []byte
	if err := r.Scan(&e.ID, &e.Time, &e.Actor, &action, &e.Account, &e.Name, &fp); err != nil {
		return e, err
	}
	if len(fp) != len(e.Fingerprint) {
		return e, fmt.Errorf("audit fingerprint column holds %d bytes, want %d", len(fp), len(e.Fingerprint))
	}
	copy(e.Fingerprint[:], fp)
	e.Action, e.Time = storage.Action(action), e.Time.UTC()
	return e, nil
}
