package api_test

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"

	"github.com/saslcert/saslcert/api"
)

// TestIdempotencyKey: a retried POST with the same key does the work once
// and gets the same answer; the key with another request is 422.
func TestIdempotencyKey(t *testing.T) {
	h := newHarness(t)
	path := "/v1/tenants/example.org/accounts/alice@example.org/certs"
	body := uploadBody(t, "laptop", cert(t, "alice@example.org"))
	first := h.do("POST", path, "hr", body, "Idempotency-Key", "hire-alice-1")
	if first.status != http.StatusCreated || first.header.Get(api.ReplayedHeader) != "" {
		t.Fatalf("first: %d %s", first.status, first.body)
	}
	again := h.do("POST", path, "hr", body, "Idempotency-Key", "hire-alice-1")
	if again.status != first.status || string(again.body) != string(first.body) || again.header.Get(api.ReplayedHeader) != "true" {
		t.Fatalf("retry: %d %s (replayed %q); want the first answer", again.status, again.body, again.header.Get(api.ReplayedHeader))
	}
	if n := len(h.auditOf("alice@example.org")); n != 1 {
		t.Fatalf("%d audit entries, want 1 (the work done once)", n)
	}
	const reused = "this Idempotency-Key was used for another request (method, path or body); use a new key for a new request"
	h.do("POST", path, "hr", uploadBody(t, "phone", cert(t, "alice@example.org")), "Idempotency-Key", "hire-alice-1").
		errorIs(t, http.StatusUnprocessableEntity, "invalid_request", reused)
	h.do("POST", "/v1/tenants/example.org/accounts/alice@example.org/revoke-all", "hr", "", "Idempotency-Key", "hire-alice-1").
		errorIs(t, http.StatusUnprocessableEntity, "invalid_request", reused)
	// Keys are per client: crm's "hire-alice-1" is another key.
	if a := h.do("POST", "/v1/tenants/example.net/accounts/carol@example.net/certs", "crm",
		uploadBody(t, "laptop", cert(t, "carol@example.net")), "Idempotency-Key", "hire-alice-1"); a.status != http.StatusCreated {
		t.Fatalf("another client's key: %d %s", a.status, a.body)
	}
	// A refusal is an answer too: replayed, not retried.
	refused := h.do("POST", path, "hr", body, "Idempotency-Key", "dup")
	refused.errorIs(t, http.StatusConflict, "conflict", "this certificate is already stored")
	if again := h.do("POST", path, "hr", body, "Idempotency-Key", "dup"); again.header.Get(api.ReplayedHeader) != "true" ||
		string(again.body) != string(refused.body) {
		t.Fatalf("replayed refusal: %d %s", again.status, again.body)
	}
}

// TestIdempotencyKeyConcurrent: the same revoke-all sent 8 times at once
// with one key revokes once; every answer is the work's or "in progress".
func TestIdempotencyKeyConcurrent(t *testing.T) {
	h := newHarness(t)
	h.upload("leaver@example.org", "laptop", cert(t, "leaver@example.org"))
	var wg sync.WaitGroup
	answers := make([]answer, 8)
	for i := range answers {
		wg.Go(func() {
			answers[i] = h.do("POST", "/v1/tenants/example.org/accounts/leaver@example.org/revoke-all", "hr", "",
				"Idempotency-Key", "leaver-1")
		})
	}
	wg.Wait()
	done := 0
	for _, a := range answers {
		switch {
		case a.status == http.StatusOK && a.header.Get(api.ReplayedHeader) == "":
			done++
		case a.status == http.StatusOK:
		case a.status == http.StatusConflict:
			a.errorIs(t, http.StatusConflict, "conflict", "a request with this Idempotency-Key is being worked on; retry later")
			if a.header.Get("Retry-After") != "1" {
				t.Errorf("409 without Retry-After: %v", a.header)
			}
		default:
			t.Fatalf("answer %d %s", a.status, a.body)
		}
	}
	if done != 1 || len(h.revokedList()) != 1 {
		t.Fatalf("%d answers did the work, %d sessions closed; want 1, 1", done, len(h.revokedList()))
	}
}

// auditOf returns the audit entries of account.
func (h *harness) auditOf(account string) []string {
	h.t.Helper()
	log, err := h.db.Audit(h.t.Context(), account, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	var out []string
	for _, e := range log {
		out = append(out, string(e.Action))
	}
	return out
}

// TestPlainStore: with a store that has neither storage.Searcher nor
// storage.Idempotency, searches walk the store and keys are kept in the
// process, with the same answers.
func TestPlainStore(t *testing.T) {
	h := newHarness(t, true)
	var want []string
	for i := range 3 {
		want = append(want, h.upload("alice@example.org", fmt.Sprintf("c%d", i), cert(t, "alice@example.org")))
		h.upload("carol@example.net", fmt.Sprintf("c%d", i), cert(t, "carol@example.net"))
	}
	var got []string
	next := ""
	for range 5 {
		var page pageAnswer
		h.do("GET", "/v1/tenants/example.org/certs?limit=2&cursor="+next, "hr", "").json(t, &page)
		for _, c := range page.Items {
			got = append(got, c.Fingerprint)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("walked search %v, want %v", got, want)
	}
	var log auditAnswer
	h.do("GET", "/v1/tenants/example.org/audit?actor=api:hr", "hr", "").json(t, &log)
	if len(log.Items) != 3 {
		t.Fatalf("walked audit: %+v", log)
	}
	first := h.do("POST", "/v1/tenants/example.org/accounts/alice@example.org/revoke-all", "hr", "", "Idempotency-Key", "k")
	again := h.do("POST", "/v1/tenants/example.org/accounts/alice@example.org/revoke-all", "hr", "", "Idempotency-Key", "k")
	if first.status != http.StatusOK || string(again.body) != string(first.body) || again.header.Get(api.ReplayedHeader) != "true" {
		t.Fatalf("in-memory key: %d %s / %d %s", first.status, first.body, again.status, again.body)
	}
	if n := len(h.revokedList()); n != 3 {
		t.Fatalf("%d revocations, want 3 (once)", n)
	}
}
