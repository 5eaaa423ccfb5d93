package xep0257

import (
	"context"
	"fmt"

	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// AppendError is Import's error: what an <append/> of the same certificate
// would have been answered, and why.
type AppendError struct {
	// Stanza is the error an <append/> would have got (same condition and
	// text).
	Stanza stanza.Error
	// Internal: the store failed (or the context ended); the certificate
	// was not refused and may be imported later.
	Internal bool
	// Err is the cause: a storage sentinel error, a *sasl.RefusalError,
	// or the name or size check's stanza.Error.
	Err error
}

func (e *AppendError) Error() string { return e.Stanza.Text[""] }
func (e *AppendError) Unwrap() error { return e.Err }

// Import stores der as the account's certificate called name on an
// administrator's behalf (moving from another server), with every check an
// <append/> from the account gets: the name and size checks of Decode,
// sasl.CheckUpload with h.Policy, h.CheckAppend, and h.Limits' active and
// history limits in the store's transaction. It skips what is about the
// requesting session (MayManage, AppendRate): the administrator decided.
// The record is audited as added by actor. On refusal it returns an
// *AppendError whose Stanza is what Process would have answered; errors.Is
// sees its cause (storage.ErrDuplicate for a certificate stored already,
// whichever account has it). account must be a bare JID with a localpart.
func (h *Handler) Import(ctx context.Context, account jid.JID, name string, der []byte, noCertManagement bool, actor string) error {
	l := h.limits()
	req, err := l.check(&Append{XMLName: nameAppend, Name: name, Cert: der, NoCertManagement: noCertManagement})
	if err == nil {
		a := req.(*Append)
		name = a.Name
		_, err = h.store(ctx, account.Bare(), a, actor)
	}
	if err == nil {
		return nil
	}
	se, internal := toStanzaError(err, errContext{name: name, limits: l})
	return &AppendError{Stanza: se, Internal: internal, Err: err}
}

// store runs the certificate checks of an append and stores it (append and
// Import).
func (h *Handler) store(ctx context.Context, account jid.JID, a *Append, actor string) (*storage.Cert, error) {
	if account.Localpart() == "" {
		return nil, fmt.Errorf("%w: %s", errNotAccount, account)
	}
	up, err := sasl.CheckUpload(a.Cert, account, h.now(), h.policy())
	if err != nil {
		return nil, err
	}
	if h.CheckAppend != nil {
		if err := h.CheckAppend(ctx, account, up); err != nil {
			return nil, err
		}
	}
	c := up.Record(a.Name, a.NoCertManagement, storage.SourceUpload)
	grace := h.ExpiredGrace
	if grace <= 0 {
		grace = DefaultExpiredGrace
	}
	err = h.Store.AddCert(ctx, c, storage.AddOptions{Actor: actor, MaxActive: h.limits().MaxPerAccount,
		MaxHistory: h.limits().MaxHistory, ExpiredBefore: h.now().Add(-grace)})
	return c, err
}
