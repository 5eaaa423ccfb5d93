package server

import (
	"testing"

	"github.com/saslcert/saslcert/api"
)

// TestEnrollPath: the enrolment link WebFinger publishes is the API's
// enrolment route.
func TestEnrollPath(t *testing.T) {
	if api.EnrollPath != EnrollPathTemplate {
		t.Fatalf("api.EnrollPath %q, server.EnrollPathTemplate %q", api.EnrollPath, EnrollPathTemplate)
	}
}

// TestCursorKey: instances with one component secret share the cursor key;
// another secret gives another key; no secret, none (a random one then).
func TestCursorKey(t *testing.T) {
	a, b, c := cursorKey([]byte("s3cret")), cursorKey([]byte("s3cret")), cursorKey([]byte("other"))
	if len(a) != 32 || string(a) != string(b) || string(a) == string(c) || string(a) == "s3cret" {
		t.Fatalf("keys %x %x %x", a, b, c)
	}
	if cursorKey(nil) != nil {
		t.Fatal("a key without a secret")
	}
}
