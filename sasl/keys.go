package sasl

import (
	"crypto"
	//lint:ignore SA1019 DSA keys are only recognised here to be refused by name.
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
)

// defaultMinRSABits applies when Policy.MinRSABits is zero or negative.
const defaultMinRSABits = 2048

// CheckKey applies the key policy to pub: RSA of at least p.MinRSABits
// (2048 when p.MinRSABits <= 0), ECDSA on P-256, P-384 or P-521, or
// Ed25519. Anything else is a weak key. It is the one key check of saslcert:
// uploads, trusted-root logins, CSRs and issued certificates all use it.
// The refusal's Reason is ReasonWeakKey.
func (p Policy) CheckKey(pub crypto.PublicKey) *RefusalError {
	alg := x509.UnknownPublicKeyAlgorithm
	switch pub.(type) {
	case *dsa.PublicKey:
		alg = x509.DSA
	}
	return checkKey(pub, alg, p.MinRSABits)
}

// checkKey is CheckKey for a key of the algorithm alg (as crypto/x509
// names it; used to name a key type it does not return a key for).
func checkKey(pub crypto.PublicKey, alg x509.PublicKeyAlgorithm, minRSA int) *RefusalError {
	if minRSA <= 0 {
		minRSA = defaultMinRSABits
	}
	switch k := pub.(type) {
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
	switch alg {
	case x509.RSA, x509.DSA, x509.ECDSA, x509.Ed25519:
		kind = "a " + alg.String() + " key"
	}
	return refuse(ReasonWeakKey, "%s; only RSA (at least %d bits), ECDSA P-256/P-384/P-521 and Ed25519 keys are accepted", kind, minRSA)
}

// checkCertKey is CheckKey for a certificate's key.
func (p Policy) checkCertKey(cert *x509.Certificate) *RefusalError {
	return checkKey(cert.PublicKey, cert.PublicKeyAlgorithm, p.MinRSABits)
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
