package server_test

import (
	"context"
	"testing"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/component"
	"github.com/saslcert/saslcert/lifecycle"
	"github.com/saslcert/saslcert/server"
	"github.com/saslcert/saslcert/storage"
	"github.com/saslcert/saslcert/storage/sqlite"
	"github.com/saslcert/saslcert/storage/sqlite/sqlitetest"
	"github.com/saslcert/saslcert/xep0257"
)

func config() server.Config {
	return server.Config{Component: component.Config{
		Addr: "127.0.0.1:1", JID: jid.MustParse("certs.example.org"), Secret: []byte("s"), ServerDomains: []string{"example.org"},
	}}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*server.Config)
		store   bool
		wantErr bool
	}{
		{"ok", nil, true, false},
		{"error/no store", nil, false, true},
		{"error/no component JID", func(c *server.Config) { c.Component.JID = jid.JID{} }, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var deps server.Deps
			if tc.store {
				deps.Store = sqlitetest.Open(t, sqlite.Options{})
			}
			s, err := server.New(cfg, deps)
			if (err != nil) != tc.wantErr {
				t.Fatalf("New: %v, want error %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			// The parts are wired: writers go through the life-cycle
			// owner, <items/> lists the component's sessions, defaults
			// come from the packages.
			if _, ok := s.Certs.Store.(*lifecycle.Manager); !ok {
				t.Errorf("the handler's store is %T, want the life-cycle owner", s.Certs.Store)
			}
			if s.Certs.Sessions != xep0257.Sessions(s.Component.Sessions()) {
				t.Error("the handler does not list the component's sessions")
			}
			if s.Certs.Limits != xep0257.DefaultLimits() || s.Certs.Timeout != component.DefaultRequestTimeout {
				t.Errorf("limits %+v, timeout %v: not the packages' defaults", s.Certs.Limits, s.Certs.Timeout)
			}
			if s.Enroll != nil {
				t.Error("enrolment without Config.Enroll")
			}
		})
	}
}

// Run stops the component and every job when ctx ends, and runs once.
func TestRunStops(t *testing.T) {
	cfg := config()
	cfg.AdminWatch, cfg.AuditRetention = 10*time.Millisecond, time.Hour
	var db storage.Store = sqlitetest.Open(t, sqlite.Options{})
	s, err := server.New(cfg, server.Deps{Store: db})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after the cancellation")
	}
	if err := s.Run(t.Context()); err == nil {
		t.Error("a second Run succeeded")
	}
}
