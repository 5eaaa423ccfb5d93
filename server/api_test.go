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
