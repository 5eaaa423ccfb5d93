package storetest

import (
	"errors"
	"fmt"

	"github.com/saslcert/saslcert/storage"
)

// testPassedOn: marks are kept per watcher, never go back, and carry the
// store's clock.
func testPassedOn(e *env) {
	if got, err := e.s.PassedOn(e.ctx); err != nil || len(got) != 0 {
		e.t.Fatalf("PassedOn on an empty store: %v, %v", got, err)
	}
	if err := e.s.MarkPassedOn(e.ctx, "", 1); !errors.Is(err, storage.ErrInvalid) {
		e.t.Fatalf("MarkPassedOn with an empty watcher: %v, want ErrInvalid", err)
	}
	t1 := e.clk.advance()
	if err := e.s.MarkPassedOn(e.ctx, "certs.b.example", 7); err != nil {
		e.t.Fatal(err)
	}
	if err := e.s.MarkPassedOn(e.ctx, "certs.a.example", 3); err != nil {
		e.t.Fatal(err)
	}
	t2 := e.clk.advance()
	// Going back keeps the ID but refreshes Seen.
	if err := e.s.MarkPassedOn(e.ctx, "certs.b.example", 5); err != nil {
		e.t.Fatal(err)
	}
	got, err := e.s.PassedOn(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	want := []storage.PassedOnMark{{"certs.a.example", 3, t1}, {"certs.b.example", 7, t2}}
	if len(got) != len(want) {
		e.t.Fatalf("PassedOn = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i].Watcher != want[i].Watcher || got[i].AuditID != want[i].AuditID || !got[i].Seen.Equal(want[i].Seen) {
			e.t.Errorf("PassedOn[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
	e.clk.advance()
	if err := e.s.MarkPassedOn(e.ctx, "certs.a.example", 9); err != nil {
		e.t.Fatal(err)
	}
	got, err = e.s.PassedOn(e.ctx)
	if err != nil || len(got) != 2 || got[0].AuditID != 9 {
		e.t.Fatalf("after moving on: %s, %v", fmt.Sprint(got), err)
	}
}
