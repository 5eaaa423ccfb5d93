package sasl

import (
	"context"
	"crypto/x509"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/storage"
)

// authorizeTrusted decides a login with a certificate that is not in the
// store, against the CAs the domain trusts (Authorizer.Trusted). In this
// order:
//   - no domain, or the domain trusts no CA: not-authorized;
//   - the certificate does not parse: not-authorized;
//   - it does not verify with x509.Verify for clientAuth at Now against the
//     domain's roots and intermediates (the critical xmppAddr SAN is
//     handled here, so it does not count as an unhandled extension):
//     credentials-expired if it would verify at its notAfter and has
//     expired, else not-authorized. No clock skew is allowed;
//   - a CA certificate, a key Authorizer.Policy refuses (CheckKey) or a
//     signature algorithm CheckUpload would refuse: not-authorized;
//   - authzid that is not a JID, is a full JID or is in another domain:
//     invalid-authzid;
//   - not exactly one xmppAddr, an unusable one, or one in another domain:
//     not-authorized;
//   - an email address (SAN or subject) other than the xmppAddr's bare JID
//     (CheckEmails): not-authorized;
//   - an authzid that is not the xmppAddr's bare JID: invalid-authzid;
//   - no IsRevoked: not-authorized; IsRevoked fails: temporary-auth-failure;
//     revoked: not-authorized.
//
// The Grant is the xmppAddr's bare JID, its resource (forced) if it is a
// full JID, and NoCertManagement true: a certificate that is not on record
// may log in but not manage certificates (docs/ENROLLMENT.md), or a CA's
// revocation of it would leave whatever it appended logging in.
func (a *Authorizer) authorizeTrusted(ctx context.Context, req Request, fp storage.Fingerprint) (Grant, error) {
	unknown := "unknown certificate " + fp.String()
	if req.Domain == "" {
		return Grant{}, fail(NotAuthorized, unknown+" (no domain to find trusted CAs for)", nil)
	}
	roots, intermediates := a.Trusted(req.Domain)
	if roots == nil {
		return Grant{}, fail(NotAuthorized, unknown, nil)
	}
	cert, sans, err := ParseCertificate(req.DER)
	if err != nil {
		return Grant{}, fail(NotAuthorized, unknown+" cannot be parsed", err)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now()
	opts := x509.VerifyOptions{
		Roots:         roots,
		Intermediates: intermediates,
		CurrentTime:   t,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	chains, err := cert.Verify(opts)
	if err != nil {
		if t.After(cert.NotAfter) {
			opts.CurrentTime = cert.NotAfter
			if _, verr := cert.Verify(opts); verr == nil {
				return Grant{}, fail(CredentialsExpired, "certificate "+fp.String()+" of a trusted CA expired on "+cert.NotAfter.UTC().Format(timeFormat), nil)
			}
		}
		return Grant{}, fail(NotAuthorized, unknown+" does not chain to a CA trusted by "+quote(req.Domain), err)
	}
	if cert.BasicConstraintsValid && cert.IsCA {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" is a CA certificate", nil)
	}
	if r := a.Policy.checkCertKey(cert); r != nil {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+": "+r.Detail, nil)
	}
	if r := checkSignature(cert); r != nil {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+": "+r.Detail, nil)
	}

	var authzid jid.JID
	if req.Authzid != "" {
		authzid, err = ParseJID(req.Authzid)
		switch {
		case err != nil:
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not a JID", err)
		case authzid.Resourcepart() != "":
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is a full JID; a client authzid must be a bare JID", nil)
		case !sameDomain(authzid.Domainpart(), req.Domain):
			return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not in the domain "+quote(req.Domain), nil)
		}
	}
	if len(sans.XMPPAddrs) != 1 || len(sans.BadAddrs) > 0 {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" of a trusted CA does not carry exactly one usable xmppAddr", nil)
	}
	addr := sans.XMPPAddrs[0]
	owner := addr.Bare()
	if owner.Localpart() == "" || !sameDomain(owner.Domainpart(), req.Domain) {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" of a trusted CA names "+quote(addr.String())+", not an account of "+quote(req.Domain), nil)
	}
	if r := CheckEmails(cert.EmailAddresses, cert.Subject, owner); r != nil {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" of a trusted CA: "+r.Detail, nil)
	}
	if req.Authzid != "" && !authzid.Equal(owner) {
		return Grant{}, fail(InvalidAuthzid, "authzid "+quote(req.Authzid)+" is not the account certificate "+fp.String()+" names", nil)
	}
	if a.IsRevoked == nil {
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" of a trusted CA cannot be checked for revocation (no IsRevoked)", nil)
	}
	revoked, err := a.IsRevoked(ctx, req.Domain, chains[0])
	switch {
	case err != nil:
		return Grant{}, fail(TemporaryAuthFailure, "revocation check of certificate "+fp.String()+" failed", err)
	case revoked:
		return Grant{}, fail(NotAuthorized, "certificate "+fp.String()+" of a trusted CA is revoked", nil)
	}
	return Grant{JID: owner, Resource: addr.Resourcepart(), Fingerprint: fp, NoCertManagement: true}, nil
}

// checkStoredAtCA applies the revocations of the CA that issued a stored
// certificate (Authorizer.IssuerRevoked), so that a CA-issued certificate
// that was also uploaded (or enrolled) stops logging in when its CA revokes
// it, as it would through trusted roots. Like trusted-roots logins it fails
// closed: a revocation source that cannot be read gives
// temporary-auth-failure, and a certificate of such a CA that no source
// covers counts as revoked (IssuerRevoked's decision). It returns whether
// a CA's state was consulted (Grant.FromCA).
func (a *Authorizer) checkStoredAtCA(ctx context.Context, domain string, cert *x509.Certificate, fp storage.Fingerprint) (bool, error) {
	if a.IssuerRevoked == nil {
		return false, nil
	}
	applies, revoked, err := a.IssuerRevoked(ctx, domain, cert)
	switch {
	case err != nil:
		return false, fail(TemporaryAuthFailure, "revocation check at the issuing CA of stored certificate "+fp.String()+" failed", err)
	case !applies:
		return false, nil
	case revoked:
		return false, fail(NotAuthorized, "stored certificate "+fp.String()+" is revoked by its CA", nil)
	}
	return true, nil
}
