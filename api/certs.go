package api

import (
	"encoding/pem"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// certJSON is a certificate record as the API shows it.
type certJSON struct {
	Fingerprint      string        `json:"fingerprint"`
	Account          string        `json:"account"`
	Name             string        `json:"name"`
	State            storage.State `json:"state"`
	Source           string        `json:"source"`
	NoCertManagement bool          `json:"no_cert_management"`
	Resource         string        `json:"resource,omitempty"`
	NotBefore        time.Time     `json:"not_before"`
	NotAfter         time.Time     `json:"not_after"`
	Issuer           string        `json:"issuer"`
	Created          time.Time     `json:"created"`
	Changed          time.Time     `json:"changed"`
	// Only in the answer about one certificate:
	Names    []string `json:"names,omitempty"`     // its xmppAddrs
	DNSNames []string `json:"dns_names,omitempty"` // its dNSNames
	Sessions []string `json:"sessions,omitempty"`  // resources of live sessions that logged in with it
	PEM      string   `json:"pem,omitempty"`
}

func certView(c *storage.Cert) certJSON {
	return certJSON{Fingerprint: c.Fingerprint.String(), Account: c.Account, Name: c.Name, State: c.State,
		Source: string(c.Source), NoCertManagement: c.NoCertManagement, Resource: c.Resource,
		NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), Issuer: c.Issuer, Created: c.Created.UTC(),
		Changed: c.Changed.UTC()}
}

// certView with what only the one-certificate answer has.
func (a *API) certDetail(c *storage.Cert) certJSON {
	v := certView(c)
	if _, sans, err := sasl.ParseCertificate(c.DER); err == nil {
		for _, j := range sans.XMPPAddrs {
			v.Names = append(v.Names, j.String())
		}
		v.DNSNames = sans.DNSNames
	}
	if a.cfg.Sessions != nil && c.State == storage.StateActive {
		if acc, err := sasl.ParseJID(c.Account); err == nil {
			v.Sessions = slices.Sorted(slices.Values(a.cfg.Sessions.Resources(acc, c.Fingerprint)))
		}
	}
	v.PEM = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.DER}))
	return v
}

// pageJSON is one page of a search.
type pageJSON[T any] struct {
	Items []T `json:"items"`
	// Next is the cursor of the next page ("" on the last page).
	Next string `json:"next_cursor,omitempty"`
}

// pageLimit reads the limit parameter (DefaultPageSize if absent).
func pageLimit(q map[string][]string) (int, error) {
	v, ok := q["limit"]
	if !ok {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, httperr.New(httperr.InvalidRequest, "limit must be a whole number from 1 to %d", MaxPageSize)
	}
	return n, nil
}

// timeParam reads an RFC 3339 time parameter (zero if absent).
// accountFilter returns the account a listing is limited to: the query's
// "account" (which must be of the call's tenant: InvalidRequest otherwise),
// and for a caller bound to one seat always that seat (another account
// named: NotFound, as if it did not exist). "" means every account.
func (c *call) accountFilter(q map[string][]string) (string, error) {
	account := ""
	if v, ok := q["account"]; ok {
		acc, err := parseAccount(v[0])
		if err != nil {
			return "", err
		}
		if acc.Domainpart() != c.tenant {
			return "", httperr.New(httperr.InvalidRequest, "account %q is not of tenant %q", v[0], c.tenant)
		}
		account = acc.String()
	}
	if c.p.Seat != "" {
		if account != "" && account != c.p.Seat {
			return "", httperr.New(httperr.NotFound, "no account %q in tenant %q", account, c.tenant)
		}
		account = c.p.Seat
	}
	return account, nil
}

func timeParam(q map[string][]string, name string) (time.Time, error) {
	v, ok := q[name]
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v[0])
	if err != nil {
		return time.Time{}, httperr.New(httperr.InvalidRequest, "%s must be an RFC 3339 time such as 2026-12-31T00:00:00Z", name)
	}
	return t, nil
}

// searchCerts: GET /v1/tenants/{tenant}/certs?state=&account=&name=&expires_after=&expires_before=&limit=&cursor=
func (a *API) searchCerts(c *call) (*reply, error) {
	q, err := c.queryParams("state", "account", "name", "expires_after", "expires_before", "limit", "cursor")
	if err != nil {
		return nil, err
	}
	cq := storage.CertQuery{Domain: c.tenant, NameContains: q.Get("name")}
	for _, s := range q["state"] {
		for _, st := range strings.Split(s, ",") {
			if !storage.State(st).Valid() {
				return nil, httperr.New(httperr.InvalidRequest, "state %q is not one of active, disabled, revoked", st)
			}
			cq.States = append(cq.States, storage.State(st))
		}
	}
	if cq.Account, err = c.accountFilter(q); err != nil {
		return nil, err
	}
	if cq.ExpiresAfter, err = timeParam(q, "expires_after"); err != nil {
		return nil, err
	}
	if cq.ExpiresBefore, err = timeParam(q, "expires_before"); err != nil {
		return nil, err
	}
	if cq.Limit, err = pageLimit(q); err != nil {
		return nil, err
	}
	search := searchID(c.pattern, c.tenant+"\x00"+c.p.Seat, q)
	if cq.AfterID, err = a.readCursor(q.Get("cursor"), search); err != nil {
		return nil, err
	}
	certs, err := storage.SearchCerts(c.ctx, a.cfg.Store, cq)
	if err != nil {
		return nil, err
	}
	out := pageJSON[certJSON]{Items: make([]certJSON, 0, len(certs))}
	for _, rec := range certs {
		out.Items = append(out.Items, certView(rec))
	}
	if len(certs) == cq.Limit {
		out.Next = a.makeCursor(certs[len(certs)-1].ID, search)
	}
	return jsonReply(http.StatusOK, out)
}

// findCert returns the record the {fingerprint} of the path names if the
// token may see it; anything else (malformed aside) is not found.
func (a *API) findCert(c *call) (*storage.Cert, error) {
	raw := c.r.PathValue("fingerprint")
	fp, err := storage.ParseFingerprint(raw)
	if err != nil {
		return nil, httperr.New(httperr.InvalidRequest, "fingerprint %q is not sha256: followed by 64 hex digits", raw)
	}
	notFound := httperr.New(httperr.NotFound, "no certificate %s in tenant %q", fp, c.tenant)
	rec, err := a.cfg.Store.FindCertByFingerprint(c.ctx, fp)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, notFound
	case err != nil:
		return nil, err
	case storage.DomainOf(rec.Account) != c.tenant, c.p.Seat != "" && rec.Account != c.p.Seat:
		return nil, notFound
	}
	return rec, nil
}

// getCert: GET /v1/tenants/{tenant}/certs/{fingerprint}
func (a *API) getCert(c *call) (*reply, error) {
	if _, err := c.queryParams(); err != nil {
		return nil, err
	}
	rec, err := a.findCert(c)
	if err != nil {
		return nil, err
	}
	return jsonReply(http.StatusOK, a.certDetail(rec))
}

// accountCerts: GET /v1/tenants/{tenant}/accounts/{account}/certs?state=
func (a *API) accountCerts(c *call) (*reply, error) {
	q, err := c.queryParams("state")
	if err != nil {
		return nil, err
	}
	var states []storage.State
	for _, s := range q["state"] {
		for _, st := range strings.Split(s, ",") {
			if !storage.State(st).Valid() {
				return nil, httperr.New(httperr.InvalidRequest, "state %q is not one of active, disabled, revoked", st)
			}
			states = append(states, storage.State(st))
		}
	}
	certs, err := a.cfg.Store.ListCerts(c.ctx, c.account.String(), states...)
	if err != nil {
		return nil, err
	}
	out := struct {
		Items []certJSON `json:"items"`
	}{Items: make([]certJSON, 0, len(certs))}
	for _, rec := range certs {
		out.Items = append(out.Items, certView(rec))
	}
	return jsonReply(http.StatusOK, out)
}

// stateRequest is the body of disable and revoke: nothing yet ({} or
// empty).
type stateRequest struct{}

// disableCert: POST /v1/tenants/{tenant}/certs/{fingerprint}/disable
func (a *API) disableCert(c *call) (*reply, error) {
	return a.setState(c, storage.StateDisabled)
}

// revokeCert: POST /v1/tenants/{tenant}/certs/{fingerprint}/revoke. The
// key is revoked: every other record of the account for the same key goes
// with it, and the live sessions of each are closed.
func (a *API) revokeCert(c *call) (*reply, error) {
	return a.setState(c, storage.StateRevoked)
}

func (a *API) setState(c *call, to storage.State) (*reply, error) {
	var req stateRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	rec, err := a.findCert(c)
	if err != nil {
		return nil, err
	}
	if rec.State == storage.StateRevoked && to == storage.StateDisabled {
		return nil, httperr.New(httperr.Conflict, "the certificate is revoked; it cannot be disabled")
	}
	rec, err = a.cfg.Lifecycle.SetStateByFingerprint(c.ctx, rec.Fingerprint, to, c.p.Actor())
	if err != nil {
		return nil, err
	}
	return jsonReply(http.StatusOK, certView(rec))
}
