package localca

import (
	"bytes"
	"context"
	"crypto/x509"
	"time"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/enroll"
)

// IssuedHere reports whether cert was signed by this CA's issuing
// certificate.
func (ca *CA) IssuedHere(cert *x509.Certificate) bool {
	return cert != nil && bytes.Equal(cert.RawIssuer, ca.cert.RawSubject) && cert.CheckSignatureFrom(ca.cert) == nil
}

// checkRenewable decides whether prev's public key may be signed again for
// account without a new proof of possession: this CA issued prev, prev
// passes enroll.CheckIssued for account now (one xmppAddr naming the
// account, clientAuth, valid now) and it is not revoked. Errors wrap
// enroll.ErrBadRequest.
func (ca *CA) checkRenewable(ctx context.Context, prev *x509.Certificate, account jid.JID, now time.Time) error {
	if !ca.IssuedHere(prev) {
		return enroll.Errorf(enroll.ErrBadRequest, "the certificate to renew (serial %x, issuer %s) was not issued by this CA", prev.SerialNumber, prev.Issuer)
	}
	if _, err := enroll.CheckIssued([][]byte{prev.Raw}, account, nil, now, nil); err != nil {
		_, detail, _ := enroll.KindOf(err)
		return enroll.Errorf(enroll.ErrBadRequest, "the certificate to renew: %s", detail)
	}
	revoked, err := ca.isRevoked(ctx, prev)
	if err != nil {
		return err
	}
	if revoked {
		return enroll.Errorf(enroll.ErrBadRequest, "the certificate to renew (serial %x) is revoked", prev.SerialNumber)
	}
	return nil
}

// isRevoked reports whether this CA's revocation list holds cert's serial
// number: a lookup in the index of the cached list, after reading what was
// appended since (see revCache).
func (ca *CA) isRevoked(ctx context.Context, cert *x509.Certificate) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var revoked bool
	err := ca.withLock(func() error {
		if _, err := ca.load(); err != nil {
			return err
		}
		revoked = ca.cache.serials[cert.SerialNumber.Text(16)]
		return nil
	})
	return revoked, err
}

// CheckRevocation implements enroll.RevocationChecker: for a certificate
// whose issuer is this CA's issuing certificate it reports (from
// RevokedFile, read afresh every time) whether it is revoked; for any other
// issuer ok is false.
func (ca *CA) CheckRevocation(ctx context.Context, cert, issuer *x509.Certificate) (revoked, ok bool, err error) {
	if issuer == nil || !bytes.Equal(issuer.Raw, ca.cert.Raw) {
		return false, false, nil
	}
	revoked, err = ca.isRevoked(ctx, cert)
	return revoked, err == nil, err
}
