package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// NoticeKind says what a Notice is about.
type NoticeKind string

// The kinds of Notice.
const (
	// NoticeRenewed: New renews Old (the same key, a later expiry); the
	// user should fetch it.
	NoticeRenewed NoticeKind = "renewed"
	// NoticeExpiring: Old is due for renewal but cannot be renewed here
	// (its CA needs a new CSR); the user should request a new certificate.
	NoticeExpiring NoticeKind = "expiring"
)

// Notice is something an account should be told after a Sweep.
type Notice struct {
	Kind    NoticeKind
	Account jid.JID
	Old     *storage.Cert
	New     *storage.Cert // NoticeRenewed only
}

// renewedSuffix starts the part of a name that a renewal adds.
const renewedSuffix = " (renewed "

// Sweep does the periodic work, and returns what accounts should be told:
//   - enrolled certificates due for renewal (ServiceConfig.RenewBefore) and
//     without a successor (an active enrolled certificate of the account for
//     the same key expiring later) are renewed by their domain's issuer for
//     the same public key and the domain's lifetime, and stored under the
//     old name with " (renewed <time>)" (NoticeRenewed); if the issuer cannot
//     renew (it needs a CSR) the account is reminded once (NoticeExpiring);
//   - expired enrolled certificates that have an active successor are
//     disabled, so that they no longer count against the account's limit;
//   - enrolled certificates revoked in the store (by XEP-0257, the CLI or an
//     API) are revoked at their CA if that has not been done yet.
//
// Failures with one certificate are logged and retried at the next Sweep;
// the error is only the store's failure to list records.
func (s *Service) Sweep(ctx context.Context) ([]Notice, error) {
	now := s.cfg.Now()
	var due, expired, revoked []*storage.Cert
	// What the memory of reminders and revocations at the CA still needs.
	keep := make(map[storage.Fingerprint]bool)
	err := s.cfg.Store.WalkCerts(ctx, func(c *storage.Cert) error {
		if c.Source != storage.SourceEnrolled {
			return nil
		}
		switch c.State {
		case storage.StateActive:
			if !now.Before(c.NotAfter) {
				expired = append(expired, c)
			} else if s.cfg.RenewBefore.Due(c.NotBefore, c.NotAfter, now) {
				due = append(due, c)
				keep[c.Fingerprint] = true
			}
		case storage.StateRevoked:
			if !now.Before(c.NotAfter) {
				return nil
			}
			keep[c.Fingerprint] = true
			s.mu.Lock()
			done := s.revokedAtCA[c.Fingerprint]
			s.mu.Unlock()
			if !done {
				revoked = append(revoked, c)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	maps.DeleteFunc(s.reminded, func(fp storage.Fingerprint, _ bool) bool { return !keep[fp] })
	maps.DeleteFunc(s.revokedAtCA, func(fp storage.Fingerprint, _ bool) bool { return !keep[fp] })
	s.mu.Unlock()
	for _, c := range revoked {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err := s.RevokeAtCA(ctx, c)
		switch {
		case err == nil:
		case errors.Is(err, ErrNotSupported) || errors.Is(err, ErrBadRequest):
			s.log.WarnContext(ctx, "enroll: a revoked certificate cannot be revoked at a CA; revoke it there by other means",
				"account", c.Account, "name", c.Name, "fingerprint", c.Fingerprint.String(), "err", err)
			s.mu.Lock()
			s.revokedAtCA[c.Fingerprint] = true
			s.mu.Unlock()
		default:
			s.log.WarnContext(ctx, "enroll: revoking at the CA failed; will retry", "account", c.Account, "name", c.Name, "err", err)
		}
	}
	for _, c := range expired {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		s.retire(ctx, c)
	}
	var notices []Notice
	for _, c := range due {
		if ctx.Err() != nil {
			return notices, ctx.Err()
		}
		if n, ok := s.renew(ctx, c, now); ok {
			notices = append(notices, n)
		}
	}
	return notices, nil
}

// successor returns an active enrolled record of c's account for the same
// key that expires after c, if any.
func (s *Service) successor(ctx context.Context, c *storage.Cert, cert *x509.Certificate) (*storage.Cert, error) {
	list, err := s.cfg.Store.ListCerts(ctx, c.Account, storage.StateActive)
	if err != nil {
		return nil, err
	}
	for _, o := range list {
		if o.ID == c.ID || o.Fingerprint == c.Fingerprint || o.Source != storage.SourceEnrolled || !o.NotAfter.After(c.NotAfter) {
			continue
		}
		oc, _, err := sasl.ParseCertificate(o.DER)
		if err == nil && bytes.Equal(oc.RawSubjectPublicKeyInfo, cert.RawSubjectPublicKeyInfo) {
			return o, nil
		}
	}
	return nil, nil
}

// retire disables an expired enrolled record that has a successor.
func (s *Service) retire(ctx context.Context, c *storage.Cert) {
	cert, _, err := sasl.ParseCertificate(c.DER)
	if err != nil {
		return
	}
	next, err := s.successor(ctx, c, cert)
	if err != nil || next == nil {
		return
	}
	if _, err := s.cfg.Store.SetStateByFingerprint(ctx, c.Fingerprint, storage.StateDisabled, ActorRenewal); err != nil {
		s.log.WarnContext(ctx, "enroll: could not disable an expired renewed certificate", "account", c.Account, "name", c.Name, "err", err)
		return
	}
	s.log.InfoContext(ctx, "enroll: disabled an expired certificate that was renewed", "account", c.Account, "name", c.Name,
		"successor", next.Name)
}

// renew renews c if it has no successor, and says what to tell its account.
func (s *Service) renew(ctx context.Context, c *storage.Cert, now time.Time) (Notice, bool) {
	log := s.log.With("account", c.Account, "name", c.Name, "fingerprint", c.Fingerprint.String())
	account, err := jid.Parse(c.Account)
	if err != nil {
		return Notice{}, false
	}
	cert, _, err := sasl.ParseCertificate(c.DER)
	if err != nil {
		return Notice{}, false
	}
	next, err := s.successor(ctx, c, cert)
	if err != nil {
		log.WarnContext(ctx, "enroll: renewal: store failed; will retry", "err", err)
		return Notice{}, false
	}
	if next != nil {
		return Notice{}, false
	}
	remind := func(why error) (Notice, bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.reminded[c.Fingerprint] {
			return Notice{}, false
		}
		s.reminded[c.Fingerprint] = true
		log.InfoContext(ctx, "enroll: a certificate is due for renewal but cannot be renewed here; reminding its owner", "why", why)
		return Notice{Kind: NoticeExpiring, Account: account, Old: c}, true
	}
	p, iss, err := s.issuerFor(account)
	if err != nil {
		return remind(err)
	}
	ir := &IssueRequest{Account: account, Renew: cert, Lifetime: p.EffectiveLifetime()}
	if err := s.checkRequestKey(ir); err != nil {
		return remind(err)
	}
	issued, err := iss.Issue(ctx, ir)
	if err == nil {
		err = s.checkIssuedKey(ctx, iss, issued)
	}
	switch {
	case errors.Is(err, ErrNotSupported) || errors.Is(err, ErrBadRequest):
		return remind(err)
	case err != nil:
		log.WarnContext(ctx, "enroll: renewal failed; will retry", "err", err)
		return Notice{}, false
	}
	rec := issued.Record(renewalName(c.Name, now, s.cfg.MaxNameLen), c.NoCertManagement)
	// Stored only if c is still active when the renewal is inserted (a
	// revoke or disable while the CA signed wins; the CA revokes it again).
	opts := storage.AddOptions{Actor: ActorRenewal, MaxActive: s.cfg.MaxPerAccount + 1, Renews: c.Fingerprint}
	if err := s.store(ctx, iss, issued, rec, opts); err != nil {
		log.WarnContext(ctx, "enroll: the renewed certificate could not be stored; will retry", "err", err)
		return Notice{}, false
	}
	s.learn(issued.Chain)
	s.follow(iss, issued.Chain)
	log.InfoContext(ctx, "enroll: certificate renewed", "new_name", rec.Name, "new_fingerprint", rec.Fingerprint.String(),
		"not_after", rec.NotAfter.UTC().Format(time.RFC3339))
	return Notice{Kind: NoticeRenewed, Account: account, Old: c, New: rec}, true
}

// renewalName is old without an earlier renewal suffix, followed by
// " (renewed <time>)", shortened to maxLen characters.
func renewalName(old string, now time.Time, maxLen int) string {
	base, _, _ := strings.Cut(old, renewedSuffix)
	suffix := renewedSuffix + now.UTC().Format("2006-01-02 15:04") + ")"
	room := maxLen - utf8.RuneCountInString(suffix)
	if room < 1 {
		return fmt.Sprintf("renewed %s", now.UTC().Format("2006-01-02 15:04:05"))
	}
	if utf8.RuneCountInString(base) > room {
		base = string([]rune(base)[:room])
	}
	return strings.TrimSpace(base) + suffix
}
