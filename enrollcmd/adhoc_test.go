package enrollcmd

import (
	"fmt"
	"testing"
	"time"

	"mellium.im/xmpp/jid"
)

func TestAdhocSessions(t *testing.T) {
	var a adhocSessions
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	alice := jid.MustParse("alice@example.org/phone")
	ids := make([]string, 0, maxAdhocSessionsPerAccount+1)
	for i := 0; i <= maxAdhocSessionsPerAccount; i++ {
		id, ok := a.open(alice, NodeEnroll, now.Add(time.Duration(i)*time.Second))
		if !ok {
			t.Fatal("open refused")
		}
		ids = append(ids, id)
	}
	if a.take(ids[0], alice, NodeEnroll, now) {
		t.Fatal("the oldest session of an account over its limit is still open")
	}
	if a.take(ids[1], jid.MustParse("alice@example.org/laptop"), NodeEnroll, now) || a.take(ids[1], alice, NodeLatest, now) {
		t.Fatal("a session was taken by another resource or for another node")
	}
	if !a.take(ids[1], alice, NodeEnroll, now) || a.take(ids[1], alice, NodeEnroll, now) {
		t.Fatal("a session can be taken exactly once")
	}
	if a.take(ids[2], alice, NodeEnroll, now.Add(adhocSessionTTL+time.Hour)) {
		t.Fatal("an expired session was taken")
	}
	// Other accounts fill the table up to its bound.
	for i := 0; len(a.m) < maxAdhocSessions; i++ {
		if _, ok := a.open(jid.MustParse(fmt.Sprintf("u%d@example.org/r", i)), NodeEnroll, now); !ok {
			t.Fatal("open refused below the bound")
		}
	}
	if _, ok := a.open(jid.MustParse("late@example.org/r"), NodeEnroll, now); ok {
		t.Fatal("open accepted over the bound")
	}
	if _, ok := a.open(jid.MustParse("late@example.org/r"), NodeEnroll, now.Add(adhocSessionTTL+time.Hour)); !ok {
		t.Fatal("expired sessions were not swept to make room")
	}
}
