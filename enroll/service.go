package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

// Defaults of ServiceConfig.
const (
	DefaultMaxPerAccount = 10
	DefaultMaxNameLen    = 64
	DefaultCRLMaxAge     = time.Minute
	// MaxCSRSize bounds a PEM CSR accepted by ParseCSR.
	MaxCSRSize = 16 << 10
)

// ErrNotOffered: the account's domain is not served, or its policy names no
// issuer.
var ErrNotOffered = errors.New("enroll: certificates are not issued for this domain")

// ActorRenewal is the audit log's actor for what the Service does on its own
// (renewals, tidying up expired predecessors).
const ActorRenewal = "enroll"

// ServiceConfig configures a Service.
type ServiceConfig struct {
	// Store keeps the issued certificates (source "enrolled").
	Store storage.Store
	// Issuers by name (EmbeddedIssuer for the embedded CA; any names for
	// the others). Policies name them.
	Issuers map[string]Issuer
	// Policies holds one policy per served domain; a domain without one
	// gets no enrollment, self-signed uploads and no trusted roots.
	Policies Policies
	// KeyPolicy is the configured key policy (saslcert serve's
	// --min-rsa-bits; the same sasl.Policy uploads and logins use). A CSR's
	// key, the key of a self-signed certificate to sign and the key of a
	// certificate to renew are checked against it before a CA is asked (an
	// error wrapping ErrBadRequest), and the issued certificate's key after
	// (ErrBadIssued; the certificate is revoked at its CA). The zero value
	// applies sasl.DefaultPolicy()'s key rules.
	KeyPolicy sasl.Policy
	// RenewBefore says when enrolled certificates are renewed (zero: never).
	RenewBefore RenewBefore
	// MaxPerAccount bounds an account's active certificates (default
	// DefaultMaxPerAccount); a renewal may exceed it by one until its
	// predecessor expires.
	MaxPerAccount int
	// IssueBurst and IssueEvery limit how fast one account may have
	// certificates issued (renewals aside): IssueBurst at once, then one
	// every IssueEvery (defaults DefaultIssueBurst, DefaultIssueEvery;
	// IssueEvery < 0: no rate limit). The limit is kept in memory, per
	// Service.
	IssueBurst int
	IssueEvery time.Duration
	// MaxNameLen bounds a certificate's name in characters (default
	// DefaultMaxNameLen).
	MaxNameLen int
	// CRLMaxAge is how long a fetched CRL is used for trusted-roots logins
	// (0: DefaultCRLMaxAge; negative: fetched for every login).
	CRLMaxAge time.Duration
	// HTTPClient fetches CRLs named by policies or certificates (default: a
	// client with a 30 s timeout that uses no proxy).
	HTTPClient *http.Client
	// Component is named in texts sent to users (optional).
	Component jid.JID
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger gets what happens (default: discard).
	Logger *slog.Logger
}

// Service issues certificates to accounts through their domain's Issuer and
// stores them, renews them before they expire, revokes them at their CA,
// and holds what each domain trusts at login and upload. It is safe for
// concurrent use.
type Service struct {
	cfg      ServiceConfig
	names    []string // issuer names, EmbeddedIssuer first, then sorted
	trust    map[string]*trust
	checkers []RevocationChecker // from the issuers, in names order
	policy   map[string][]RevocationChecker
	crlMax   time.Duration
	log      *slog.Logger
	limits   *limiter

	mu          sync.Mutex
	learnt      []*x509.Certificate // intermediates seen in issued chains
	followed    []*x509.Certificate // those of issuers that publish revocations (follow)
	cdp         map[string]*CRLChecker
	reminded    map[storage.Fingerprint]bool
	revokedAtCA map[storage.Fingerprint]bool
	crlCheckers []*CRLChecker
}

// trust is what one domain trusts at login.
type trust struct {
	roots, intermediates *x509.CertPool
}

// NewService checks cfg (every policy valid, every named issuer configured)
// and returns a Service.
func NewService(cfg ServiceConfig) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("enroll: NewService: no store")
	}
	names := make([]string, 0, len(cfg.Issuers))
	for n, iss := range cfg.Issuers {
		if iss == nil {
			return nil, fmt.Errorf("enroll: NewService: issuer %q is nil", n)
		}
		names = append(names, n)
	}
	sort.Slice(names, func(i, j int) bool {
		if (names[i] == EmbeddedIssuer) != (names[j] == EmbeddedIssuer) {
			return names[i] == EmbeddedIssuer
		}
		return names[i] < names[j]
	})
	if err := cfg.Policies.Validate(names); err != nil {
		return nil, err
	}
	cfg.Issuers = maps.Clone(cfg.Issuers)
	cfg.Policies = maps.Clone(cfg.Policies)
	if cfg.MaxPerAccount <= 0 {
		cfg.MaxPerAccount = DefaultMaxPerAccount
	}
	if cfg.IssueBurst <= 0 {
		cfg.IssueBurst = DefaultIssueBurst
	}
	if cfg.IssueEvery == 0 {
		cfg.IssueEvery = DefaultIssueEvery
	}
	if cfg.MaxNameLen <= 0 {
		cfg.MaxNameLen = DefaultMaxNameLen
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	}
	crlMax := cfg.CRLMaxAge
	switch {
	case crlMax == 0:
		crlMax = DefaultCRLMaxAge
	case crlMax < 0:
		crlMax = 0
	}
	s := &Service{
		cfg:         cfg,
		names:       names,
		trust:       make(map[string]*trust),
		policy:      make(map[string][]RevocationChecker),
		crlMax:      crlMax,
		log:         cfg.Logger,
		cdp:         make(map[string]*CRLChecker),
		reminded:    make(map[storage.Fingerprint]bool),
		revokedAtCA: make(map[storage.Fingerprint]bool),
		limits:      newLimiter(cfg.IssueBurst, cfg.IssueEvery),
	}
	for _, n := range names {
		switch iss := cfg.Issuers[n].(type) {
		case RevocationChecker:
			s.checkers = append(s.checkers, iss)
		case CRLFetcher:
			c := &CRLChecker{Name: "issuer " + n, Fetch: iss.CRL, MaxAge: crlMax, Now: cfg.Now}
			s.checkers = append(s.checkers, c)
			s.crlCheckers = append(s.crlCheckers, c)
		}
	}
	for d, p := range cfg.Policies {
		if len(p.TrustedRoots) > 0 {
			t := &trust{roots: x509.NewCertPool(), intermediates: x509.NewCertPool()}
			for _, r := range p.TrustedRoots {
				t.roots.AddCert(r)
			}
			for _, c := range p.Intermediates {
				t.intermediates.AddCert(c)
			}
			s.trust[d] = t
		}
		for _, u := range p.CRLURLs {
			c := NewHTTPCRLChecker(u, cfg.HTTPClient, crlMax, cfg.Now)
			s.policy[d] = append(s.policy[d], c)
			s.crlCheckers = append(s.crlCheckers, c)
		}
	}
	return s, nil
}

// DomainPolicy returns the policy of account's domain and whether the domain has
// one.
func (s *Service) DomainPolicy(account jid.JID) (DomainPolicy, bool) {
	return s.cfg.Policies.For(account)
}

// Offered reports whether certificates are issued to account's domain.
func (s *Service) Offered(account jid.JID) bool {
	_, _, err := s.issuerFor(account)
	return err == nil
}

// issuerFor returns the policy and the issuer of account's domain.
func (s *Service) issuerFor(account jid.JID) (DomainPolicy, Issuer, error) {
	p, ok := s.cfg.Policies.For(account)
	if !ok || p.Issuer == "" {
		return p, nil, Errorf(ErrNotOffered, "%s", account.Domainpart())
	}
	iss, ok := s.cfg.Issuers[p.Issuer]
	if !ok {
		return p, nil, Errorf(ErrNotOffered, "%s (issuer %q is not configured)", account.Domainpart(), p.Issuer)
	}
	return p, iss, nil
}

// Trusted returns the roots and intermediates domain trusts for
// certificates presented at login without an upload (nil, nil if none).
// It is meant for sasl.Authorizer.Trusted.
func (s *Service) Trusted(domain string) (roots, intermediates *x509.CertPool) {
	t := s.trust[domain]
	if t == nil {
		return nil, nil
	}
	return t.roots, t.intermediates
}

// EnrollRequest asks the Service for a certificate.
type EnrollRequest struct {
	// Account is the authenticated bare JID of the requester (the
	// server-stamped from of the XMPP request, or an admin's --jid); never
	// a name from the request payload.
	Account jid.JID
	// Actor is recorded in the audit log (a full JID, "cli", ...).
	Actor string
	// Name to store the certificate under; "" picks "CA-issued <time>".
	Name string
	// Exactly one of CSR and SelfSignedName: a CSR, or the name of one of
	// the account's active stored certificates (a self-signed upload)
	// whose key the CA is to certify.
	CSR            *x509.CertificateRequest
	SelfSignedName string
	// NoCertManagement marks the stored record so.
	NoCertManagement bool
	// Lifetime overrides the domain policy's lifetime when > 0 (for
	// admins; requests from users leave it 0).
	Lifetime time.Duration
}

// Enrolled is an issued and stored certificate.
type Enrolled struct {
	Record *storage.Cert
	// Chain is the certificate (DER) followed by the intermediate CAs that
	// lead to its root (the root itself is left out).
	Chain [][]byte
}

// Enroll issues a certificate for req.Account through its domain's issuer
// and stores it with source "enrolled". Before anything is sent to a CA it
// reserves one of the account's MaxPerAccount slots (issuances in progress
// in this Service count like active certificates, so requests sent at once
// cannot all reach the CA), checks that the name is free and the account
// below its limit, and takes one issuance from the account's rate allowance
// (IssueBurst, IssueEvery), so that a certificate is not issued only to be
// refused by the store; if the store still refuses it (another process
// stored one meanwhile), the certificate is revoked at the CA again.
//
// Errors wrap ErrNotOffered, ErrBadRequest (including an unusable name or
// CSR), ErrRateLimited, the Issuer's errors, storage.ErrNameTaken,
// storage.ErrLimit, storage.ErrNotFound (no active certificate named
// SelfSignedName) or storage.ErrUnavailable.
func (s *Service) Enroll(ctx context.Context, req *EnrollRequest) (*Enrolled, error) {
	if req == nil {
		return nil, Errorf(ErrBadRequest, "no request")
	}
	if err := CheckAccount(req.Account); err != nil {
		return nil, err
	}
	account := req.Account
	p, iss, err := s.issuerFor(account)
	if err != nil {
		return nil, err
	}
	switch {
	case req.CSR == nil && req.SelfSignedName == "":
		return nil, Errorf(ErrBadRequest, "send a CSR or name an uploaded self-signed certificate")
	case req.CSR != nil && req.SelfSignedName != "":
		return nil, Errorf(ErrBadRequest, "send either a CSR or the name of an uploaded certificate, not both")
	}
	now := s.cfg.Now()
	name := strings.TrimSpace(req.Name)
	if err := s.checkName(name); err != nil {
		return nil, err
	}
	res, err := s.limits.reserve(account.String(), s.cfg.MaxPerAccount)
	if err != nil {
		return nil, err
	}
	defer res.release()
	active, err := s.cfg.Store.ListCerts(ctx, account.String(), storage.StateActive)
	if err != nil {
		return nil, err
	}
	taken := func(n string) bool {
		return slices.ContainsFunc(active, func(c *storage.Cert) bool { return c.Name == n })
	}
	switch {
	case name == "":
		base := "CA-issued " + now.UTC().Format("2006-01-02 15:04:05")
		name = base
		for i := 2; taken(name) || !res.claim(name); i++ {
			name = fmt.Sprintf("%s #%d", base, i)
		}
	case taken(name) || !res.claim(name):
		return nil, fmt.Errorf("%w: %q", storage.ErrNameTaken, name)
	}
	if n := res.others(); len(active)+n >= s.cfg.MaxPerAccount {
		return nil, fmt.Errorf("%w: %d active certificates and %d requests in progress", storage.ErrLimit, len(active), n)
	}
	lifetime := p.EffectiveLifetime()
	if req.Lifetime > 0 {
		lifetime = req.Lifetime
	}
	ir := &IssueRequest{Account: account, CSR: req.CSR, Lifetime: lifetime}
	if req.SelfSignedName != "" {
		i := slices.IndexFunc(active, func(c *storage.Cert) bool { return c.Name == req.SelfSignedName })
		if i < 0 {
			return nil, fmt.Errorf("%w: no active certificate named %q", storage.ErrNotFound, req.SelfSignedName)
		}
		ir.SelfSigned = active[i].DER
	}
	if err := s.checkRequestKey(ir); err != nil {
		return nil, err
	}
	if err := s.limits.allow(account.String(), now); err != nil {
		return nil, err
	}
	issued, err := iss.Issue(ctx, ir)
	if err != nil {
		return nil, err
	}
	if err := s.checkIssuedKey(ctx, iss, issued); err != nil {
		return nil, err
	}
	rec := issued.Record(name, req.NoCertManagement)
	if err := s.store(ctx, iss, issued, rec, storage.AddOptions{Actor: req.Actor, MaxActive: s.cfg.MaxPerAccount}); err != nil {
		return nil, err
	}
	s.learn(issued.Chain)
	s.follow(iss, issued.Chain)
	s.log.InfoContext(ctx, "enroll: certificate issued", "account", account.String(), "name", name, "issuer", p.Issuer,
		"serial", issued.Cert.SerialNumber.Text(16), "not_after", issued.Cert.NotAfter.UTC().Format(time.RFC3339),
		"fingerprint", rec.Fingerprint.String(), "actor", req.Actor)
	return &Enrolled{Record: rec, Chain: issued.Chain}, nil
}

// checkRequestKey applies KeyPolicy to the key req asks a CA to sign (the
// CSR's, the self-signed certificate's or the renewed certificate's). The
// error wraps ErrBadRequest.
func (s *Service) checkRequestKey(req *IssueRequest) error {
	switch {
	case req.CSR != nil:
		return policyRefusal(req.CSR.PublicKey, s.cfg.KeyPolicy)
	case req.Renew != nil:
		return policyRefusal(req.Renew.PublicKey, s.cfg.KeyPolicy)
	case len(req.SelfSigned) > 0:
		cert, err := x509.ParseCertificate(req.SelfSigned)
		if err != nil {
			return Errorf(ErrBadRequest, "the self-signed certificate: %v", err)
		}
		return policyRefusal(cert.PublicKey, s.cfg.KeyPolicy)
	}
	return nil
}

// checkIssuedKey applies KeyPolicy to what a CA issued; a certificate it
// refuses is revoked at its CA and the error wraps ErrBadIssued.
func (s *Service) checkIssuedKey(ctx context.Context, iss Issuer, issued *Issued) error {
	r := s.cfg.KeyPolicy.CheckKey(issued.Cert.PublicKey)
	if r == nil {
		return nil
	}
	err := Errorf(ErrBadIssued, "%s", r.Detail)
	s.revokeUnused(ctx, iss, issued, err)
	return err
}

// store adds rec; if the store refuses it, the just issued certificate is
// revoked at the CA so that no usable certificate is left outside the store.
func (s *Service) store(ctx context.Context, iss Issuer, issued *Issued, rec *storage.Cert, opts storage.AddOptions) error {
	err := s.cfg.Store.AddCert(ctx, rec, opts)
	if err == nil {
		return nil
	}
	s.revokeUnused(ctx, iss, issued, err)
	return err
}

// revokeUnused revokes at its CA a certificate that was issued but will not
// be stored (why), so that no usable certificate is left outside the store.
func (s *Service) revokeUnused(ctx context.Context, iss Issuer, issued *Issued, why error) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	rerr := iss.Revoke(rctx, &RevokeRequest{Cert: issued.Cert, Reason: ReasonCessationOfOperation})
	if rerr != nil && !errors.Is(rerr, ErrNotSupported) {
		s.log.WarnContext(ctx, "enroll: an issued certificate could not be stored nor revoked at its CA",
			"serial", issued.Cert.SerialNumber.Text(16), "store_err", why, "revoke_err", rerr)
	}
}

// checkName applies XEP-0257's rules for names.
func (s *Service) checkName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return Errorf(ErrBadRequest, "the name is not valid UTF-8")
	case strings.ContainsFunc(name, unicode.IsControl):
		return Errorf(ErrBadRequest, "the name contains a control character")
	case utf8.RuneCountInString(name) > s.cfg.MaxNameLen:
		return Errorf(ErrBadRequest, "the name is longer than %d characters", s.cfg.MaxNameLen)
	}
	return nil
}

// learn keeps the CA certificates of an issued chain for building chains
// later.
func (s *Service) learn(chain [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, der := range chain[1:] {
		if slices.ContainsFunc(s.learnt, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, der) }) {
			continue
		}
		if c, err := x509.ParseCertificate(der); err == nil && c.IsCA {
			s.learnt = append(s.learnt, c)
		}
	}
}

// caCerts are the CA certificates the Service knows for building chains:
// the issuers' own, the policies' intermediates and roots, and those seen
// in issued chains.
func (s *Service) caCerts() []*x509.Certificate {
	var out []*x509.Certificate
	for _, n := range s.names {
		if c, ok := s.cfg.Issuers[n].(interface{ Cert() *x509.Certificate }); ok {
			out = append(out, c.Cert())
		}
	}
	for _, p := range s.cfg.Policies {
		out = append(out, p.Intermediates...)
	}
	s.mu.Lock()
	out = append(out, s.learnt...)
	s.mu.Unlock()
	return out
}

// chainFor returns leaf followed by the CA certificates that lead from it
// towards a root, as far as they are known, roots left out.
func (s *Service) chainFor(leaf *x509.Certificate) [][]byte {
	chain := [][]byte{leaf.Raw}
	cas := s.caCerts()
	cur := leaf
	for range 8 {
		i := slices.IndexFunc(cas, func(c *x509.Certificate) bool {
			return bytes.Equal(cur.RawIssuer, c.RawSubject) && cur.CheckSignatureFrom(c) == nil
		})
		if i < 0 || bytes.Equal(cas[i].RawIssuer, cas[i].RawSubject) {
			break
		}
		cur = cas[i]
		chain = append(chain, cur.Raw)
	}
	return chain
}

// Latest returns the account's active enrolled certificate that expires
// last, with its chain. Errors: storage.ErrNotFound (none), the store's.
func (s *Service) Latest(ctx context.Context, account jid.JID) (*Enrolled, error) {
	list, err := s.cfg.Store.ListCerts(ctx, account.Bare().String(), storage.StateActive)
	if err != nil {
		return nil, err
	}
	var best *storage.Cert
	for _, c := range list {
		if c.Source == storage.SourceEnrolled && (best == nil || !c.NotAfter.Before(best.NotAfter)) {
			best = c
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: no certificate has been issued to %s", storage.ErrNotFound, account.Bare())
	}
	cert, _, err := sasl.ParseCertificate(best.DER)
	if err != nil {
		return &Enrolled{Record: best, Chain: [][]byte{best.DER}}, nil
	}
	return &Enrolled{Record: best, Chain: s.chainFor(cert)}, nil
}

// RevokeAtCA revokes an enrolled record's certificate at the CA that issued
// it (it tries the account's domain issuer first, then the others), so that
// servers reading the CA's CRL refuse it too. Records that were uploaded are
// left alone (nil). It returns ErrNotSupported when no configured CA can
// revoke it (EST, or a CA no longer configured), and the CA's error when it
// could not be reached.
func (s *Service) RevokeAtCA(ctx context.Context, rec *storage.Cert) error {
	if rec == nil || rec.Source != storage.SourceEnrolled {
		return nil
	}
	cert, _, err := sasl.ParseCertificate(rec.DER)
	if err != nil {
		return Errorf(ErrBadRequest, "the stored certificate cannot be parsed: %v", err)
	}
	order := slices.Clone(s.names)
	if account, err := jid.Parse(rec.Account); err == nil {
		if p, ok := s.cfg.Policies.For(account); ok && p.Issuer != "" {
			if i := slices.Index(order, p.Issuer); i > 0 {
				order = append([]string{p.Issuer}, slices.Delete(order, i, i+1)...)
			}
		}
	}
	var notSupported error
	for _, n := range order {
		err := s.cfg.Issuers[n].Revoke(ctx, &RevokeRequest{Cert: cert, Reason: ReasonUnspecified})
		switch {
		case err == nil:
			s.mu.Lock()
			s.revokedAtCA[rec.Fingerprint] = true
			s.mu.Unlock()
			s.invalidateCRLs()
			s.log.InfoContext(ctx, "enroll: revoked at the CA", "issuer", n, "account", rec.Account, "name", rec.Name,
				"serial", cert.SerialNumber.Text(16), "fingerprint", rec.Fingerprint.String())
			return nil
		case errors.Is(err, ErrBadRequest):
			// Not issued by this CA.
		case errors.Is(err, ErrNotSupported):
			notSupported = err
		default:
			return fmt.Errorf("issuer %s: %w", n, err)
		}
	}
	if notSupported != nil {
		return notSupported
	}
	return Errorf(ErrNotSupported, "no configured CA issued the certificate (issuer %s)", cert.Issuer)
}

// invalidateCRLs makes the next revocation check fetch every CRL afresh.
func (s *Service) invalidateCRLs() {
	s.mu.Lock()
	list := slices.Clone(s.crlCheckers)
	for _, c := range s.cdp {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		c.Invalidate()
	}
}

// maxCDPCheckers bounds the CRL distribution points remembered.
const maxCDPCheckers = 64

// IsRevoked reports whether chain[0], a certificate that verified against
// domain's trusted roots through chain[1:], is revoked. It is meant for
// sasl.Authorizer.IsRevoked. It asks, in this order: the store (a record
// with its fingerprint that is not active), the issuers' revocation lists
// (the embedded CA's, step-ca's CRL), the CRLs of domain's policy, and the
// certificate's own CRL distribution points (http/https). The first source
// that covers chain[0]'s issuer decides. When none does, the certificate is
// treated as revoked (and a warning logged) if no source failed, and an
// error is returned if one did.
func (s *Service) IsRevoked(ctx context.Context, domain string, chain []*x509.Certificate) (bool, error) {
	if len(chain) == 0 || chain[0] == nil {
		return false, errors.New("enroll: IsRevoked: no certificate")
	}
	leaf, issuer := chain[0], chain[0]
	if len(chain) > 1 {
		issuer = chain[1]
	}
	rec, err := s.cfg.Store.FindCertByFingerprint(ctx, storage.FingerprintOf(leaf.Raw))
	switch {
	case err == nil && rec.State != storage.StateActive:
		return true, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return false, err
	}
	sources := slices.Clone(s.checkers)
	sources = append(sources, s.policy[domain]...)
	for _, u := range leaf.CRLDistributionPoints {
		if c := s.cdpChecker(u); c != nil {
			sources = append(sources, c)
		}
	}
	var errs []error
	for _, src := range sources {
		revoked, ok, err := src.CheckRevocation(ctx, leaf, issuer)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			return revoked, nil
		}
	}
	if len(errs) > 0 {
		return false, errors.Join(errs...)
	}
	s.log.WarnContext(ctx, "enroll: no revocation information for a certificate of a trusted CA; refusing it (configure the CA's CRL in the domain's crl_urls)",
		"domain", domain, "issuer", issuer.Subject.String(), "serial", leaf.SerialNumber.Text(16))
	return true, nil
}

// cdpChecker returns the checker for a CRL distribution point URL (nil if it
// is not http or https, or too many are known).
func (s *Service) cdpChecker(raw string) *CRLChecker {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cdp[raw]; ok {
		return c
	}
	if len(s.cdp) >= maxCDPCheckers {
		return nil
	}
	c := NewHTTPCRLChecker(raw, s.cfg.HTTPClient, s.crlMax, s.cfg.Now)
	s.cdp[raw] = c
	return c
}

// ReasonSelfSignedNotAllowed is the sasl.RefusalError reason of CheckAppend.
const ReasonSelfSignedNotAllowed sasl.Reason = "self-signed-not-allowed"

// CheckAppend is meant for xep0257.Handler.CheckAppend: when the policy of
// account's domain does not allow self-signed uploads, it refuses (a
// *sasl.RefusalError, sent as not-acceptable with its text) every upload
// that does not chain to the domain's trusted roots.
func (s *Service) CheckAppend(ctx context.Context, account jid.JID, up *sasl.Upload) error {
	p, ok := s.cfg.Policies.For(account)
	if !ok || p.AllowSelfSigned {
		return nil
	}
	if t := s.trust[account.Domainpart()]; t != nil && up != nil && up.Cert != nil {
		opts := x509.VerifyOptions{
			Roots:         t.roots,
			Intermediates: t.intermediates,
			CurrentTime:   s.cfg.Now(),
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
		if _, err := up.Cert.Verify(opts); err == nil {
			return nil
		}
	}
	how := "request one with the ad-hoc command \"Request a certificate\""
	if !s.cfg.Component.Equal(jid.JID{}) {
		how += " on " + s.cfg.Component.String()
	}
	if p.Issuer == "" {
		how = "ask your administrator for one"
	}
	return &sasl.RefusalError{
		Reason: ReasonSelfSignedNotAllowed,
		Detail: fmt.Sprintf("%s accepts only certificates issued by its CA, not self-signed ones; %s", account.Domainpart(), how),
	}
}
