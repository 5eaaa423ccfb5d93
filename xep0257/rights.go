package xep0257

import (
	"context"
	"errors"
	"fmt"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// Auth is what the XMPP server vouches for about how the session that sent
// a request logged in. It travels with the request (the saslcert server
// plugin stamps it on every request it passes on: docs/PLUGIN-PROTOCOL.md,
// "auth stamp"), so it is known even for a session the component has not
// heard of yet. The zero value means that nothing is known.
type Auth struct {
	// Vouched is true when the server vouched for the fields below. Without
	// it the other fields mean nothing and the session may not manage
	// certificates.
	Vouched bool
	// Certificate is true for a session that logged in with a client
	// certificate through saslcert (SASL EXTERNAL), false for any other
	// login (a password, a token).
	Certificate bool
	// Fingerprint is that certificate's, when Certificate is set.
	Fingerprint storage.Fingerprint
	// Manage is the server's grant: false for a certificate login whose
	// grant carries no-cert-management (records marked so and trusted-roots
	// logins).
	Manage bool
}

// Errors of MayManage (mapped to auth/forbidden by toStanzaError).
var (
	errNotVouched         = errors.New("xep0257: the server did not vouch for how the session logged in")
	errNoCertManagement   = errors.New("xep0257: session's certificate has no-cert-management")
	errSessionCertUnknown = errors.New("xep0257: session's certificate is not in the store")
	errSessionCertState   = errors.New("xep0257: session's certificate is not active or not the account's")
)

// MayManage is the one decision whether the session from (a full JID the
// server stamped), which logged in as auth says, may append, disable or
// revoke certificates or obtain new ones (enrollment). Listing is not
// management. It fails closed; in this order:
//   - nothing vouched for (no or an invalid stamp, e.g. a server without the
//     saslcert plugin): forbidden;
//   - the server's grant says no management: forbidden;
//   - a certificate login whose certificate is not on record (a
//     trusted-roots login), is not active, or is another account's:
//     forbidden;
//   - the record has <no-cert-management/>: forbidden;
//   - the record cannot be read: the store's error (wait).
//
// A password (or any other non-certificate) login the server vouched for
// may manage. The error is a stanza.Error ready to send.
func (h *Handler) MayManage(ctx context.Context, from jid.JID, auth Auth) error {
	err := h.mayManage(ctx, from, auth)
	if err == nil {
		return nil
	}
	se, internal := toStanzaError(err, errContext{limits: h.limits()})
	log := h.logger().With("from", from.String())
	if internal {
		log.WarnContext(ctx, "xep0257: management rights could not be decided", "err", err)
	} else {
		log.DebugContext(ctx, "xep0257: management refused", "err", err)
	}
	return se
}

func (h *Handler) mayManage(ctx context.Context, from jid.JID, auth Auth) error {
	switch {
	case !auth.Vouched:
		return errNotVouched
	case !auth.Manage:
		return errNoCertManagement
	case !auth.Certificate:
		return nil
	}
	fp := auth.Fingerprint
	if h.Store == nil {
		return fmt.Errorf("%w: no store to look %s up in", storage.ErrUnavailable, fp)
	}
	c, err := h.Store.FindCertByFingerprint(ctx, fp)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return fmt.Errorf("%w: %s", errSessionCertUnknown, fp)
	case err != nil:
		return err
	case c.State != storage.StateActive || c.Account != from.Bare().String():
		return fmt.Errorf("%w: %s is %s, of %s", errSessionCertState, fp, c.State, c.Account)
	case c.NoCertManagement:
		return fmt.Errorf("%w: %s", errNoCertManagement, fp)
	}
	return nil
}
