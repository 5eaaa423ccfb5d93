package enroll

import (
	"errors"
	"fmt"
)

// Kind classifies an enrollment error: what went wrong, not where. Callers
// that answer users (the ad-hoc commands, saslcert cert issue) map each kind
// to their own words in one table, and show Error.Detail as the reason.
type Kind int

// The kinds of enrollment errors. Each has a sentinel error (ErrBadRequest,
// ...) that errors.Is matches for every *Error of that kind.
const (
	KindBadRequest   Kind = iota + 1 // refused before a CA was asked (ErrBadRequest)
	KindNotSupported                 // the issuer cannot do this (ErrNotSupported)
	KindRejected                     // the CA answered and refused (ErrRejected)
	KindPending                      // the CA holds the request for approval (ErrPending)
	KindUnavailable                  // the CA could not be reached or failed (ErrUnavailable)
	KindBadIssued                    // the CA issued an unusable certificate (ErrBadIssued)
	KindRateLimited                  // too many requests for the account (ErrRateLimited)
	KindNotOffered                   // no enrollment for the account's domain (ErrNotOffered)
)

// kindErrs are the sentinels, by kind.
var kindErrs = map[Kind]error{
	KindBadRequest:   ErrBadRequest,
	KindNotSupported: ErrNotSupported,
	KindRejected:     ErrRejected,
	KindPending:      ErrPending,
	KindUnavailable:  ErrUnavailable,
	KindBadIssued:    ErrBadIssued,
	KindRateLimited:  ErrRateLimited,
	KindNotOffered:   ErrNotOffered,
}

// Err returns k's sentinel error (nil for an unknown kind).
func (k Kind) Err() error { return kindErrs[k] }

// Error is an enrollment error: its Kind and a Detail a person can act on
// (what to change, when to retry). Error() is the kind's sentinel text, ": "
// and Detail, as the package's errors always read. errors.Is(err,
// ErrBadRequest) (and the other sentinels) matches it by kind; Unwrap gives
// the errors Detail was made from (so errors.Is reaches, e.g.,
// sasl.ErrJIDForms). Read it with errors.As or KindOf, never by parsing
// Error().
type Error struct {
	Kind   Kind
	Detail string
	err    error // what Errorf's %w verbs wrapped, if anything
}

func (e *Error) Error() string {
	if s := e.Kind.Err(); s != nil {
		return s.Error() + ": " + e.Detail
	}
	return "enroll: " + e.Detail
}

// Is reports whether target is the sentinel of e's kind.
func (e *Error) Is(target error) bool { return target != nil && target == e.Kind.Err() }

// Unwrap returns what Detail wraps (nil if nothing).
func (e *Error) Unwrap() error { return e.err }

// Errorf returns an *Error of the kind whose sentinel is kind (ErrBadRequest,
// ...; another error gives an *Error of no kind), with Detail formatted as by
// fmt.Errorf: a %w verb makes the error reachable with errors.Is and As.
func Errorf(kind error, format string, args ...any) error {
	detail := fmt.Errorf(format, args...)
	e := &Error{Detail: detail.Error()}
	if errors.Unwrap(detail) != nil {
		e.err = detail
	} else if _, ok := detail.(interface{ Unwrap() []error }); ok {
		e.err = detail
	}
	for k, s := range kindErrs {
		if s == kind {
			e.Kind = k
		}
	}
	return e
}

// KindOf returns the kind of err and its detail: from the outermost *Error
// in err's chain, else the kind of a bare sentinel err wraps (detail: all of
// err's text). ok is false for an error of no kind.
func KindOf(err error) (k Kind, detail string, ok bool) {
	var e *Error
	if errors.As(err, &e) && e.Kind != 0 {
		return e.Kind, e.Detail, true
	}
	for k := KindBadRequest; k <= KindNotOffered; k++ {
		if errors.Is(err, k.Err()) {
			return k, err.Error(), true
		}
	}
	return 0, "", false
}
