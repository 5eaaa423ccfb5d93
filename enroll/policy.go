package enroll

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
)

// Lifetime bounds a DomainPolicy accepts.
const (
	MinLifetime = time.Hour
	MaxLifetime = 90 * 24 * time.Hour
)

// EmbeddedIssuer is the issuer name of the embedded CA.
const EmbeddedIssuer = "embedded"

// DomainPolicy is what one served domain allows.
type DomainPolicy struct {
	// Issuer names the Issuer that enrolls this domain's accounts:
	// EmbeddedIssuer, the name of a configured step-ca or EST back-end, or ""
	// for none (no enrollment).
	Issuer string
	// Lifetime of issued certificates (0: DefaultLifetime).
	Lifetime time.Duration
	// AllowSelfSigned lets accounts upload self-signed certificates
	// (XEP-0257 append).
	AllowSelfSigned bool
	// TrustedRoots are the CAs whose certificates may be presented at login
	// without an upload. Such a login still needs exactly one xmppAddr naming
	// the account, and the certificate must not be revoked.
	TrustedRoots []*x509.Certificate
	// Intermediates are CA certificates used to build chains from a
	// presented certificate to TrustedRoots (servers pass on the leaf
	// only); they are not trusted by themselves.
	Intermediates []*x509.Certificate
	// CRLURLs are CRLs (http or https) to check trusted-roots logins
	// against, besides the issuers' own revocation lists.
	CRLURLs []string
}

// DefaultDomainPolicy is the policy of a domain without settings: the embedded CA,
// DefaultLifetime, self-signed uploads allowed, no trusted roots.
func DefaultDomainPolicy() DomainPolicy {
	return DomainPolicy{Issuer: EmbeddedIssuer, Lifetime: DefaultLifetime, AllowSelfSigned: true}
}

// EffectiveLifetime is p.Lifetime, or DefaultLifetime if that is 0.
func (p DomainPolicy) EffectiveLifetime() time.Duration {
	if p.Lifetime == 0 {
		return DefaultLifetime
	}
	return p.Lifetime
}

// Validate checks p on its own: a lifetime of 0 or between MinLifetime and
// MaxLifetime, trusted roots that are CA certificates allowed to sign
// certificates, and at least one way to get a certificate (an issuer,
// self-signed uploads or trusted roots).
func (p DomainPolicy) Validate() error {
	switch {
	case p.Lifetime != 0 && (p.Lifetime < MinLifetime || p.Lifetime > MaxLifetime):
		return fmt.Errorf("lifetime %s: want between %s and %s", p.Lifetime, MinLifetime, MaxLifetime)
	case p.Issuer == "" && !p.AllowSelfSigned && len(p.TrustedRoots) == 0:
		return errors.New("no issuer, no self-signed uploads and no trusted roots: no certificate could ever be used")
	case strings.TrimSpace(p.Issuer) != p.Issuer:
		return fmt.Errorf("issuer %q: leading or trailing space", p.Issuer)
	}
	if err := checkCAs("trusted root", p.TrustedRoots); err != nil {
		return err
	}
	if err := checkCAs("intermediate", p.Intermediates); err != nil {
		return err
	}
	for _, s := range p.CRLURLs {
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CRL URL %q: want http://host/path or https://host/path", s)
		}
	}
	return nil
}

// checkCAs checks that every certificate of list is a CA certificate allowed
// to sign certificates.
func checkCAs(what string, list []*x509.Certificate) error {
	for i, r := range list {
		switch {
		case r == nil:
			return fmt.Errorf("%s %d: missing", what, i)
		case !r.BasicConstraintsValid || !r.IsCA:
			return fmt.Errorf("%s %d (%s): not a CA certificate", what, i, r.Subject)
		case r.KeyUsage != 0 && r.KeyUsage&x509.KeyUsageCertSign == 0:
			return fmt.Errorf("%s %d (%s): its key usage does not allow signing certificates", what, i, r.Subject)
		}
	}
	return nil
}

// Policies maps each served domain (a domain JID, e.g. "example.org") to its
// policy.
type Policies map[string]DomainPolicy

// For returns the policy of account's domain, and whether the domain is
// served.
func (ps Policies) For(account jid.JID) (DomainPolicy, bool) {
	p, ok := ps[account.Domainpart()]
	return p, ok
}

// Validate checks every domain name (a valid, normalised domain JID) and
// policy, and that every named issuer is one of issuers. Errors name the
// domain.
func (ps Policies) Validate(issuers []string) error {
	domains := make([]string, 0, len(ps))
	for d := range ps {
		domains = append(domains, d)
	}
	sort.Strings(domains)
	for _, d := range domains {
		j, err := sasl.ParseJID(d)
		switch {
		case errors.Is(err, sasl.ErrJIDForms):
			return fmt.Errorf("enroll: policy for %q: %w", d, err)
		case err != nil:
			return fmt.Errorf("enroll: policy for %q: not a domain: %v", d, err)
		case j.Localpart() != "" || j.Resourcepart() != "" || j.String() != d:
			return fmt.Errorf("enroll: policy for %q: want a normalised domain such as %q", d, j.Domainpart())
		}
		p := ps[d]
		if err := p.Validate(); err != nil {
			return fmt.Errorf("enroll: policy for %s: %w", d, err)
		}
		if p.Issuer != "" && !slices.Contains(issuers, p.Issuer) {
			return fmt.Errorf("enroll: policy for %s: unknown issuer %q (configured: %s)", d, p.Issuer, strings.Join(issuers, ", "))
		}
	}
	return nil
}
