package component

import (
	"slices"
	"strings"
	"sync"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/xep0257"
)

// Registry is what the component knows about live client sessions that
// logged in with a certificate, as reported by the server plugin (session
// notices, and the session list it asks for after every connect). It
// implements xep0257.Sessions and is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	// domain -> bare account -> resource -> fingerprint
	m map[string]map[string]map[string]storage.Fingerprint
}

var _ xep0257.Sessions = (*Registry)(nil)

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{m: make(map[string]map[string]map[string]storage.Fingerprint)}
}

// CertOf returns the fingerprint of the certificate the session full logged
// in with, as far as the plugin's notices have told: false also for a
// session whose notice has not arrived yet. It is for display and tests;
// never decide rights with it (requests carry their auth stamp: stamp.go).
func (r *Registry) CertOf(full jid.JID) (storage.Fingerprint, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	fp, ok := r.m[full.Domainpart()][full.Bare().String()][full.Resourcepart()]
	return fp, ok
}

// Resources implements xep0257.Sessions; the result is sorted.
func (r *Registry) Resources(account jid.JID, fp storage.Fingerprint) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var res []string
	for resource, f := range r.m[account.Domainpart()][account.Bare().String()] {
		if f == fp {
			res = append(res, resource)
		}
	}
	slices.Sort(res)
	return res
}

// Bound records that the session full logged in with the certificate fp.
func (r *Registry) Bound(full jid.JID, fp storage.Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	accounts := r.m[full.Domainpart()]
	if accounts == nil {
		accounts = make(map[string]map[string]storage.Fingerprint)
		r.m[full.Domainpart()] = accounts
	}
	bare := full.Bare().String()
	res := accounts[bare]
	if res == nil {
		res = make(map[string]storage.Fingerprint)
		accounts[bare] = res
	}
	res[full.Resourcepart()] = fp
}

// Closed forgets the session full.
func (r *Registry) Closed(full jid.JID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	accounts := r.m[full.Domainpart()]
	bare := full.Bare().String()
	res := accounts[bare]
	delete(res, full.Resourcepart())
	if len(res) == 0 {
		delete(accounts, bare)
	}
	if len(accounts) == 0 {
		delete(r.m, full.Domainpart())
	}
}

// CertSession is one live session in a Registry.
type CertSession struct {
	JID         jid.JID // full JID
	Fingerprint storage.Fingerprint
}

// Replace sets the sessions of domain to exactly list (entries of other
// domains in list are ignored).
func (r *Registry) Replace(domain string, list []CertSession) {
	accounts := make(map[string]map[string]storage.Fingerprint)
	for _, s := range list {
		if s.JID.Domainpart() != domain {
			continue
		}
		bare := s.JID.Bare().String()
		if accounts[bare] == nil {
			accounts[bare] = make(map[string]storage.Fingerprint)
		}
		accounts[bare][s.JID.Resourcepart()] = s.Fingerprint
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(accounts) == 0 {
		delete(r.m, domain)
		return
	}
	r.m[domain] = accounts
}

// Snapshot returns every session known for domain, sorted by JID.
func (r *Registry) Snapshot(domain string) []CertSession {
	r.mu.RLock()
	var list []CertSession
	for bare, res := range r.m[domain] {
		for resource, fp := range res {
			full, err := jid.Parse(bare + "/" + resource)
			if err != nil {
				continue
			}
			list = append(list, CertSession{JID: full, Fingerprint: fp})
		}
	}
	r.mu.RUnlock()
	slices.SortFunc(list, func(a, b CertSession) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return list
}

// Forget drops the sessions of account that logged in with fp (after the
// plugin confirmed it closed them).
func (r *Registry) Forget(account jid.JID, fp storage.Fingerprint) {
	r.mu.Lock()
	defer r.mu.Unlock()
	accounts := r.m[account.Domainpart()]
	bare := account.Bare().String()
	res := accounts[bare]
	for resource, f := range res {
		if f == fp {
			delete(res, resource)
		}
	}
	if len(res) == 0 {
		delete(accounts, bare)
	}
	if len(accounts) == 0 {
		delete(r.m, account.Domainpart())
	}
}
