package enrollcmd

import (
	"sync"
	"time"

	"mellium.im/xmpp/jid"
)

// adhocSessions are the multi-stage command sessions in progress.
type adhocSessions struct {
	mu sync.Mutex
	m  map[string]adhocSession
}

type adhocSession struct {
	from    jid.JID // full JID
	node    string
	expires time.Time
}

// open starts a session for from; false if too many are open. An account
// has at most maxAdhocSessionsPerAccount open: opening another ends its
// oldest, so that one account cannot fill the table.
func (a *adhocSessions) open(from jid.JID, node string, now time.Time) (string, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[string]adhocSession)
	}
	account := from.Bare()
	n, oldest := 0, ""
	for id, s := range a.m {
		if s.from.Bare().Equal(account) {
			n++
			if oldest == "" || s.expires.Before(a.m[oldest].expires) {
				oldest = id
			}
		}
	}
	if n >= maxAdhocSessionsPerAccount {
		delete(a.m, oldest)
	}
	if len(a.m) >= maxAdhocSessions {
		for id, s := range a.m {
			if now.After(s.expires) {
				delete(a.m, id)
			}
		}
		if len(a.m) >= maxAdhocSessions {
			return "", false
		}
	}
	id := newID()
	a.m[id] = adhocSession{from: from, node: node, expires: now.Add(adhocSessionTTL)}
	return id, true
}

// take ends the session id if it belongs to from and node and has not
// expired, and reports whether it did.
func (a *adhocSessions) take(id string, from jid.JID, node string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	s, ok := a.m[id]
	if !ok || !s.from.Equal(from) || s.node != node {
		return false
	}
	delete(a.m, id)
	return !now.After(s.expires)
}

// drop ends the session id if it belongs to from.
func (a *adhocSessions) drop(id string, from jid.JID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if s, ok := a.m[id]; ok && s.from.Equal(from) {
		delete(a.m, id)
	}
}
