package enroll

import (
	"bytes"
	"context"
	"crypto/x509"
	"slices"
)

// revokes reports whether iss publishes revocations saslcert can read (the
// embedded CA's list, step-ca's CRL); EST CAs do not.
func revokes(iss Issuer) bool {
	switch iss.(type) {
	case RevocationChecker, CRLFetcher:
		return true
	}
	return false
}

// follow remembers the CA certificates of a chain issued by iss as CAs whose
// revocations apply to stored certificates (IssuerRevoked), if iss
// publishes revocations.
func (s *Service) follow(iss Issuer, chain [][]byte) {
	if !revokes(iss) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, der := range chain[1:] {
		if slices.ContainsFunc(s.followed, func(c *x509.Certificate) bool { return bytes.Equal(c.Raw, der) }) {
			continue
		}
		if c, err := x509.ParseCertificate(der); err == nil && c.IsCA {
			s.followed = append(s.followed, c)
		}
	}
}

// followedCAs are the CA certificates whose revocations apply to stored
// certificates of domain: the own certificates of issuers that publish
// revocations (the embedded CA), the CAs of chains they issued, and the
// domain's trusted roots and intermediates (a domain that trusts a CA for
// logins without an upload must be able to read its revocations anyway).
func (s *Service) followedCAs(domain string) []*x509.Certificate {
	var out []*x509.Certificate
	for _, n := range s.names {
		iss := s.cfg.Issuers[n]
		if c, ok := iss.(interface{ Cert() *x509.Certificate }); ok && revokes(iss) {
			out = append(out, c.Cert())
		}
	}
	if p, ok := s.cfg.Policies[domain]; ok {
		out = append(out, p.TrustedRoots...)
		out = append(out, p.Intermediates...)
	}
	s.mu.Lock()
	out = append(out, s.followed...)
	s.mu.Unlock()
	return out
}

// IssuerRevoked is meant for sasl.Authorizer.IssuerRevoked: it decides
// whether a stored certificate of an account of domain was revoked by the
// CA that issued it. That CA is looked for among followedCAs by name and
// signature; if none issued cert, applies is false (a self-signed upload,
// or a CA whose revocations saslcert does not read, such as EST). If one
// did, IsRevoked decides with the chain cert, CA, exactly as for a login
// through trusted roots: the first source that covers the CA (the
// embedded CA's list, step-ca's CRL, the domain's crl_urls, the
// certificate's CRL distribution points) decides, a source that cannot be
// read is an error, and a certificate no source covers counts as revoked.
func (s *Service) IssuerRevoked(ctx context.Context, domain string, cert *x509.Certificate) (applies, revoked bool, err error) {
	if cert == nil {
		return false, false, nil
	}
	var issuer *x509.Certificate
	for _, ca := range s.followedCAs(domain) {
		if bytes.Equal(cert.RawIssuer, ca.RawSubject) && cert.CheckSignatureFrom(ca) == nil {
			issuer = ca
			break
		}
	}
	if issuer == nil {
		return false, false, nil
	}
	revoked, err = s.IsRevoked(ctx, domain, []*x509.Certificate{cert, issuer})
	return true, revoked, err
}
