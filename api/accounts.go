package api

import "net/http"

// revokeAllJSON answers a revoke-all: the records revoked, as they are now.
type revokeAllJSON struct {
	Account string     `json:"account"`
	Revoked []certJSON `json:"revoked"`
}

// revokeAll: POST /v1/tenants/{tenant}/accounts/{account}/revoke-all (the
// leaver). lifecycle.Manager.RevokeAll revokes every active or disabled
// certificate of the account in one transaction; before it returns, the
// plugin forgets its caches (logins are refused at once) and closes every
// live session that logged in with one of them. The account lives on: it
// may get new certificates later.
func (a *API) revokeAll(c *call) (*reply, error) {
	var req stateRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	certs, err := a.cfg.Lifecycle.RevokeAll(c.ctx, c.account.String(), c.p.Actor())
	if err != nil {
		return nil, err
	}
	out := revokeAllJSON{Account: c.account.String(), Revoked: make([]certJSON, 0, len(certs))}
	for _, rec := range certs {
		out.Revoked = append(out.Revoked, certView(rec))
	}
	return jsonReply(http.StatusOK, out)
}
