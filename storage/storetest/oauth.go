package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/saslcert/saslcert/storage"
)

// RunOAuth runs the storage.OAuthStore contract suite against the stores
// open returns, one fresh store per subtest, with the suite's clock.
func RunOAuth(t *testing.T, open func(t *testing.T, now func() time.Time) storage.OAuthStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, clk *clock, s storage.OAuthStore)
	}{
		{"Clients", testOAuthClients},
		{"ClientErrors", testOAuthClientErrors},
		{"SigningKeys", testOAuthSigningKeys},
		{"JTI", testOAuthJTI},
		{"ConcurrentJTI", testOAuthConcurrentJTI},
		{"RevokedTokens", testOAuthRevoked},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := &clock{t: start}
			tc.fn(t, clk, open(t, clk.Now))
		})
	}
}

func testOAuthClients(t *testing.T, clk *clock, s storage.OAuthStore) {
	ctx := t.Context()
	b := &storage.OAuthClient{ID: "b", Tenants: []string{"example.org"}, Scopes: []string{"certs:read"}, JWKSURI: "https://hr.example.org/jwks"}
	a := &storage.OAuthClient{ID: "a", Tenants: []string{"example.org", "example.net"}, Scopes: []string{"certs:read", "certs:write"},
		SecretHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", JWKS: []byte(`{"keys":[]}`)}
	for _, c := range []*storage.OAuthClient{b, a} {
		if err := s.AddClient(ctx, c); err != nil {
			t.Fatalf("AddClient(%s): %v", c.ID, err)
		}
		if !c.Created.Equal(clk.Now()) {
			t.Errorf("Created %v, want %v", c.Created, clk.Now())
		}
	}
	a.Scopes[0] = "changed" // the store keeps its own copy
	got, err := s.FindClient(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := storage.OAuthClient{ID: "a", Tenants: []string{"example.org", "example.net"}, Scopes: []string{"certs:read", "certs:write"},
		SecretHash: a.SecretHash, JWKS: []byte(`{"keys":[]}`), Created: clk.Now()}
	if fmt.Sprint(*got) != fmt.Sprint(want) {
		t.Errorf("FindClient:\n got %+v\nwant %+v", *got, want)
	}
	if got, err := s.FindClient(ctx, "b"); err != nil || got.JWKS != nil || got.JWKSURI != b.JWKSURI || got.SecretHash != "" {
		t.Errorf("FindClient(b) = %+v, %v", got, err)
	}
	l, err := s.ListClients(ctx)
	if err != nil || len(l) != 2 || l[0].ID != "a" || l[1].ID != "b" {
		t.Fatalf("ListClients = %v, %v; want a, b", l, err)
	}
	if err := s.RemoveClient(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindClient(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FindClient after remove: %v, want ErrNotFound", err)
	}
	if err := s.RemoveClient(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("RemoveClient twice: %v, want ErrNotFound", err)
	}
	if l, err := s.ListClients(ctx); err != nil || len(l) != 1 {
		t.Errorf("ListClients after remove = %v, %v", l, err)
	}
}

func testOAuthClientErrors(t *testing.T, _ *clock, s storage.OAuthStore) {
	ctx := t.Context()
	if err := s.AddClient(ctx, &storage.OAuthClient{ID: "hr", Tenants: []string{"example.org"}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    storage.OAuthClient
		want error
	}{
		{"empty id", storage.OAuthClient{Tenants: []string{"example.org"}}, storage.ErrInvalid},
		{"no tenant", storage.OAuthClient{ID: "x"}, storage.ErrInvalid},
		{"empty tenant", storage.OAuthClient{ID: "x", Tenants: []string{""}}, storage.ErrInvalid},
		{"space in scope", storage.OAuthClient{ID: "x", Tenants: []string{"example.org"}, Scopes: []string{"a b"}}, storage.ErrInvalid},
		{"duplicate", storage.OAuthClient{ID: "hr", Tenants: []string{"example.net"}}, storage.ErrDuplicate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.AddClient(ctx, &tc.c); !errors.Is(err, tc.want) {
				t.Errorf("AddClient: %v, want %v", err, tc.want)
			}
		})
	}
	if l, _ := s.ListClients(ctx); len(l) != 1 || l[0].Tenants[0] != "example.org" {
		t.Errorf("after failed adds: %v, want only hr (example.org)", l)
	}
	if _, err := s.FindClient(ctx, ""); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("FindClient(\"\"): %v, want ErrNotFound", err)
	}
}

func testOAuthSigningKeys(t *testing.T, clk *clock, s storage.OAuthStore) {
	ctx := t.Context()
	if l, err := s.SigningKeys(ctx); err != nil || len(l) != 0 {
		t.Fatalf("SigningKeys on an empty store = %v, %v", l, err)
	}
	k1 := &storage.SigningKey{ID: "k1", Alg: "ES256", Private: []byte{1, 2, 3}}
	if err := s.RotateSigningKey(ctx, k1); err != nil {
		t.Fatal(err)
	}
	t1 := clk.Now()
	t2 := clk.advance()
	if err := s.RotateSigningKey(ctx, &storage.SigningKey{ID: "k2", Alg: "ES256", Private: []byte{4}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateSigningKey(ctx, &storage.SigningKey{ID: "k1", Alg: "ES256", Private: []byte{5}}); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("RotateSigningKey(k1 again): %v, want ErrDuplicate", err)
	}
	if err := s.RotateSigningKey(ctx, &storage.SigningKey{ID: "k3", Alg: "ES256"}); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("RotateSigningKey(no key): %v, want ErrInvalid", err)
	}
	l, err := s.SigningKeys(ctx)
	if err != nil || len(l) != 2 {
		t.Fatalf("SigningKeys = %v, %v; want 2", l, err)
	}
	if l[0].ID != "k2" || !l[0].Retired.IsZero() || !l[0].Created.Equal(t2) {
		t.Errorf("current key %+v, want k2 created %v, not retired", l[0], t2)
	}
	if l[1].ID != "k1" || !l[1].Retired.Equal(t2) || !l[1].Created.Equal(t1) || !slices.Equal(l[1].Private, []byte{1, 2, 3}) {
		t.Errorf("old key %+v, want k1 created %v retired %v", l[1], t1, t2)
	}
	if n, err := s.PruneSigningKeys(ctx, t2); err != nil || n != 0 {
		t.Errorf("PruneSigningKeys(at retirement) = %d, %v; want 0", n, err)
	}
	if n, err := s.PruneSigningKeys(ctx, t2.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("PruneSigningKeys(after) = %d, %v; want 1", n, err)
	}
	if l, _ := s.SigningKeys(ctx); len(l) != 1 || l[0].ID != "k2" {
		t.Errorf("after prune: %v, want only k2 (the current key is never pruned)", l)
	}
}

func testOAuthJTI(t *testing.T, clk *clock, s storage.OAuthStore) {
	ctx := t.Context()
	exp := clk.Now().Add(2 * time.Second)
	if err := s.UseJTI(ctx, "hr", "j1", exp); err != nil {
		t.Fatal(err)
	}
	if err := s.UseJTI(ctx, "hr", "j1", exp); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("replay: %v, want ErrDuplicate", err)
	}
	if err := s.UseJTI(ctx, "other", "j1", exp); err != nil {
		t.Errorf("same jti of another client: %v", err)
	}
	for _, tc := range [][2]string{{"", "j"}, {"hr", ""}} {
		if err := s.UseJTI(ctx, tc[0], tc[1], exp); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("UseJTI(%q, %q): %v, want ErrInvalid", tc[0], tc[1], err)
		}
	}
	clk.advance()
	if err := s.UseJTI(ctx, "hr", "j1", exp); !errors.Is(err, storage.ErrDuplicate) {
		t.Errorf("replay before expiry: %v, want ErrDuplicate", err)
	}
	clk.advance() // now past exp: the record is gone
	if err := s.UseJTI(ctx, "hr", "j1", clk.Now().Add(time.Minute)); err != nil {
		t.Errorf("after expiry: %v", err)
	}
}

func testOAuthConcurrentJTI(t *testing.T, clk *clock, s storage.OAuthStore) {
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = s.UseJTI(t.Context(), "hr", "same", clk.Now().Add(time.Minute)) })
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrDuplicate):
			t.Errorf("UseJTI: %v, want nil or ErrDuplicate", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent uses of one jti succeeded, want 1", ok, n)
	}
}

func testOAuthRevoked(t *testing.T, clk *clock, s storage.OAuthStore) {
	ctx := t.Context()
	if r, err := s.TokenRevoked(ctx, "t1"); err != nil || r {
		t.Fatalf("TokenRevoked before = %v, %v", r, err)
	}
	if err := s.RevokeToken(ctx, "t1", clk.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeToken(ctx, "t1", clk.Now().Add(time.Hour)); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := s.RevokeToken(ctx, "", clk.Now()); !errors.Is(err, storage.ErrInvalid) {
		t.Errorf("RevokeToken(\"\"): %v, want ErrInvalid", err)
	}
	clk.advance()
	if err := s.RevokeToken(ctx, "t2", clk.Now().Add(time.Minute)); err != nil { // prunes expired ones
		t.Fatal(err)
	}
	for _, id := range []string{"t1", "t2"} {
		if r, err := s.TokenRevoked(ctx, id); err != nil || !r {
			t.Errorf("TokenRevoked(%s) = %v, %v; want true (t1 kept: the later expiry counts)", id, r, err)
		}
	}
	if r, _ := s.TokenRevoked(ctx, "t3"); r {
		t.Error("TokenRevoked(t3) = true")
	}
}
