package sasl

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
)

// defaultMinRSABits applies when Policy.MinRSABits is zero or negative.
const defaultMinRSABits = 2048

// checkKey applies the key policy: RSA of at least minRSA bits, ECDSA on
// P-256, P-384 or P-521, or Ed25519. Anything else is a weak key.
func checkKey(cert *x509.Certificate, minRSA int) *RefusalError {
	if minRSA <= 0 {
		minRSA = defaultMinRSABits
	}
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSA {
			return refuse(ReasonWeakKey, "RSA key of %d bits; at least %d are required", bits, minRSA)
		}
		return nil
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return refuse(ReasonWeakKey, "ECDSA key on curve %s; only P-256, P-384 and P-521 are accepted", k.Curve.Params().Name)
	case ed25519.PublicKey:
		return nil
	}
	kind := "an unsupported key type"
	switch cert.PublicKeyAlgorithm {
	case x509.RSA, x509.DSA, x509.ECDSA, x509.Ed25519:
		kind = "a " + cert.PublicKeyAlgorithm.String() + " key"
	}
	return refuse(ReasonWeakKey, "%s; only RSA (at least %d bits), ECDSA P-256/P-384/P-521 and Ed25519 keys are accepted", kind, minRSA)
}

// checkSignature refuses MD5, SHA-1, DSA and unknown signature algorithms.
// It looks at the algorithm only: certificates are pinned by their DER, so
// the signature itself is not verified (XEP-0257 allows self-signed ones).
func checkSignature(cert *x509.Certificate) *RefusalError {
	switch alg := cert.SignatureAlgorithm; alg {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1:
		return refuse(ReasonWeakSignature, "signed with %s; SHA-1 and MD5 signatures are refused", alg)
	case x509.DSAWithSHA256:
		return refuse(ReasonWeakSignature, "signed with %s; DSA signatures are refused", alg)
	case x509.UnknownSignatureAlgorithm:
		return refuse(ReasonWeakSignature, "signed with an unknown signature algorithm; use ECDSA, Ed25519 or RSA with SHA-256 or better")
	}
	return nil
}

// refuse builds a *RefusalError.
func refuse(r Reason, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: r, Detail: fmt.Sprintf(format, args...)}
}
