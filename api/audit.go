package api

import (
	"net/http"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// auditJSON is one audit entry.
type auditJSON struct {
	ID          int64          `json:"id"`
	Time        time.Time      `json:"time"`
	Actor       string         `json:"actor"`
	Action      storage.Action `json:"action"`
	Account     string         `json:"account"`
	Name        string         `json:"name"`
	Fingerprint string         `json:"fingerprint"`
}

// audit: GET /v1/tenants/{tenant}/audit?since=&account=&actor=&limit=&cursor=
// oldest first (a reader follows the log page by page).
func (a *API) audit(c *call) (*reply, error) {
	q, err := c.queryParams("since", "account", "actor", "limit", "cursor")
	if err != nil {
		return nil, err
	}
	aq := storage.AuditQuery{Domain: c.tenant, Actor: q.Get("actor")}
	if aq.Account, err = c.accountFilter(q); err != nil {
		return nil, err
	}
	if aq.Since, err = timeParam(q, "since"); err != nil {
		return nil, err
	}
	if aq.Limit, err = pageLimit(q); err != nil {
		return nil, err
	}
	search := searchID(c.pattern, c.tenant+"\x00"+c.p.Seat, q)
	if aq.AfterID, err = a.readCursor(q.Get("cursor"), search); err != nil {
		return nil, err
	}
	entries, err := storage.SearchAudit(c.ctx, a.cfg.Store, aq)
	if err != nil {
		return nil, err
	}
	out := pageJSON[auditJSON]{Items: make([]auditJSON, 0, len(entries))}
	for _, e := range entries {
		out.Items = append(out.Items, auditJSON{ID: e.ID, Time: e.Time.UTC(), Actor: e.Actor, Action: e.Action,
			Account: e.Account, Name: e.Name, Fingerprint: e.Fingerprint.String()})
	}
	if len(entries) == aq.Limit {
		out.Next = a.makeCursor(entries[len(entries)-1].ID, search)
	}
	return jsonReply(http.StatusOK, out)
}
