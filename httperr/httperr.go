// Package httperr holds the one wire format of every HTTP error saslcert
// answers (the OAuth2 endpoints, the /v1 API, WebFinger, health): a JSON
// object {"error": "<code>", "error_description": "<text>"} (RFC 6749 §5.2,
// the shape of the organisation API documents the project started from) with
// the status that goes with the code, and for bearer-token errors the
// WWW-Authenticate challenge of RFC 6750 §3.
//
// Handlers return or build an *Error and call Write; they never write error
// bodies by hand.
package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The error codes. RFC 6749 §5.2 (token endpoint), RFC 6750 §3.1 (resource
// requests), RFC 7009/7662 reuse them; NotFound, Conflict, TooManyRequests,
// PayloadTooLarge and Unavailable are the API's own.
const (
	InvalidRequest       = "invalid_request"         // 400
	InvalidClient        = "invalid_client"          // 401
	InvalidGrant         = "invalid_grant"           // 400
	UnauthorizedClient   = "unauthorized_client"     // 400
	UnsupportedGrantType = "unsupported_grant_type"  // 400
	InvalidScope         = "invalid_scope"           // 400
	InvalidToken         = "invalid_token"           // 401
	InsufficientScope    = "insufficient_scope"      // 403
	NotFound             = "not_found"               // 404
	MethodNotAllowed     = "method_not_allowed"      // 405
	Conflict             = "conflict"                // 409
	PayloadTooLarge      = "payload_too_large"       // 413
	UnsupportedMedia     = "unsupported_media_type"  // 415
	TooManyRequests      = "too_many_requests"       // 429
	ServerError          = "server_error"            // 500
	Unavailable          = "temporarily_unavailable" // 503
)

// statusOf is the status each code is answered with.
var statusOf = map[string]int{
	InvalidRequest: http.StatusBadRequest, InvalidClient: http.StatusUnauthorized,
	InvalidGrant: http.StatusBadRequest, UnauthorizedClient: http.StatusBadRequest,
	UnsupportedGrantType: http.StatusBadRequest, InvalidScope: http.StatusBadRequest,
	InvalidToken: http.StatusUnauthorized, InsufficientScope: http.StatusForbidden,
	NotFound: http.StatusNotFound, MethodNotAllowed: http.StatusMethodNotAllowed,
	Conflict: http.StatusConflict, PayloadTooLarge: http.StatusRequestEntityTooLarge,
	UnsupportedMedia: http.StatusUnsupportedMediaType, TooManyRequests: http.StatusTooManyRequests,
	ServerError: http.StatusInternalServerError, Unavailable: http.StatusServiceUnavailable,
}

// Challenge is the WWW-Authenticate scheme an error carries.
type Challenge int

const (
	NoChallenge Challenge = iota
	Bearer                // RFC 6750 §3: Bearer realm, error, error_description (and scope)
	Basic                 // RFC 6749 §5.2: invalid_client after HTTP Basic client authentication
)

// Realm is the realm of every challenge.
const Realm = "saslcert"

// Error is an HTTP error answer. Code is one of the constants above;
// Description is for a person (never secrets, never internal errors' text).
type Error struct {
	Code        string
	Description string
	// Status overrides the code's status (0: the code's).
	Status int
	// Challenge adds a WWW-Authenticate header; Scope is its scope
	// attribute (insufficient_scope: the scope the request needed).
	Challenge Challenge
	Scope     string
	// RetryAfter, if positive, is sent as Retry-After (whole seconds, at
	// least 1).
	RetryAfter time.Duration
	// Cause is logged by the caller, never sent.
	Cause error
}

// New returns an *Error of code with a formatted description.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return e.Code + ": " + e.Description + ": " + e.Cause.Error()
	}
	return e.Code + ": " + e.Description
}

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// HTTPStatus is the status e is answered with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// body is the JSON of an error answer.
type body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// Write answers err: an *Error in its chain as it is, anything else as a 500
// server_error whose description says nothing of err (log it before). The
// answer is never cached.
func Write(w http.ResponseWriter, err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: ServerError, Description: "internal error; the administrator can find it in the log"}
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	switch e.Challenge {
	case Bearer:
		v := fmt.Sprintf("Bearer realm=%q, error=%q", Realm, e.Code)
		if e.Description != "" {
			v += fmt.Sprintf(", error_description=%q", quotable(e.Description))
		}
		if e.Scope != "" {
			v += fmt.Sprintf(", scope=%q", quotable(e.Scope))
		}
		h.Set("WWW-Authenticate", v)
	case Basic:
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", Realm))
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(max(1, int((e.RetryAfter+time.Second-1)/time.Second))))
	}
	w.WriteHeader(e.HTTPStatus())
	_ = json.NewEncoder(w).Encode(body{Error: e.Code, Description: e.Description})
}

// quotable keeps the characters RFC 6750 §3 allows in error_description
// and scope (%x20-21 / %x23-5B / %x5D-7E): no quote, no backslash, ASCII.
func quotable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || r == '"' || r == '\\' {
			return '?'
		}
		return r
	}, s)
}
