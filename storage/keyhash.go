package storage

import (
	"crypto/sha256"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// KeyHash is the SHA-256 digest of a certificate's DER SubjectPublicKeyInfo:
// it names the key pair, whatever certificate carries it. A renewal (a new
// certificate for the same key) has the KeyHash of the certificate it
// renews, and a revocation applies to every record of the account with the
// same KeyHash (Store.RevokeKey).
type KeyHash [sha256.Size]byte

// KeyHashOf returns the KeyHash of the DER certificate der, read with a
// minimal DER walk (tbsCertificate's seventh field, after an optional
// version), and false if der is not shaped like an X.509 certificate.
func KeyHashOf(der []byte) (KeyHash, bool) {
	in := cryptobyte.String(der)
	var cert, tbs, spki cryptobyte.String
	if !in.ReadASN1(&cert, cbasn1.SEQUENCE) || !in.Empty() || !cert.ReadASN1(&tbs, cbasn1.SEQUENCE) {
		return KeyHash{}, false
	}
	if !tbs.SkipOptionalASN1(cbasn1.Tag(0).Constructed().ContextSpecific()) ||
		!tbs.SkipASN1(cbasn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // signature
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // validity
		!tbs.SkipASN1(cbasn1.SEQUENCE) || // subject
		!tbs.ReadASN1Element(&spki, cbasn1.SEQUENCE) {
		return KeyHash{}, false
	}
	return sha256.Sum256(spki), true
}
