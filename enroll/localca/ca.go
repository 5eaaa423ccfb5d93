// Package localca is saslcert's embedded CA, the default enroll.Issuer: a
// root and an issuing (intermediate) CA kept in a directory, issuing
// short-lived client certificates with exactly one id-on-xmppAddr, EKU
// clientAuth and a CRL distribution point, and publishing a CRL.
//
// The directory holds (written by Init, never overwritten):
//
//	root.crt  root CA certificate (PEM) - what servers put in their client-CA file
//	root.key  root CA private key (PKCS#8 PEM, 0600); only Init uses it
//	ca.crt    issuing CA certificate (PEM)
//	ca.key    issuing CA private key (PKCS#8 PEM, 0600)
//
// and, once something is revoked or a CRL is made:
//
//	revoked.json  revocations and CRL numbering (0600, replaced atomically)
//	crl.der       the current CRL
//	ca.lock       flock(2) target shared by the server and CLI commands
//
// Keys are ECDSA P-256. Private keys are never logged or printed.
package localca

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/sasl"
)

// File names inside the CA directory.
const (
	RootCertFile = "root.crt"
	RootKeyFile  = "root.key"
	CertFile     = "ca.crt"
	KeyFile      = "ca.key"
	RevokedFile  = "revoked.json"
	JournalFile  = "revoked.log" // revocations since RevokedFile was last rewritten, one JSON object a line
	CRLFile      = "crl.der"
	LockFile     = "ca.lock"
)

// Defaults.
const (
	DefaultName         = "saslcert"
	DefaultRootLifetime = 20 * 365 * 24 * time.Hour
	DefaultCALifetime   = 5 * 365 * 24 * time.Hour
	DefaultCRLValidity  = 24 * time.Hour
)

// ErrExist is returned by Init when the directory already holds a CA.
var ErrExist = errors.New("localca: a CA already exists there")

// InitOptions configure Init. The zero value is fine.
type InitOptions struct {
	// Name prefixes the CAs' common names ("<Name> root CA", "<Name>
	// issuing CA"); default DefaultName.
	Name string
	// RootLifetime and CALifetime default to DefaultRootLifetime and
	// DefaultCALifetime.
	RootLifetime, CALifetime time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Init creates a CA in dir (created 0700 if missing): a root and an issuing
// CA, both ECDSA P-256, keys written 0600 as PKCS#8 PEM. It refuses (ErrExist)
// if any of the CA files is already there, and leaves nothing behind when it
// fails.
func Init(dir string, o InitOptions) error {
	if o.Name == "" {
		o.Name = DefaultName
	}
	if o.RootLifetime == 0 {
		o.RootLifetime = DefaultRootLifetime
	}
	if o.CALifetime == 0 {
		o.CALifetime = DefaultCALifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CALifetime > o.RootLifetime {
		return errors.New("localca: the issuing CA cannot outlive the root")
	}
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	for _, f := range []string{RootCertFile, RootKeyFile, CertFile, KeyFile} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			return fmt.Errorf("%w: %s exists; remove the CA files first if you really mean to replace the CA", ErrExist, filepath.Join(dir, f))
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("localca: %w", err)
		}
	}

	now := o.Now().Truncate(time.Second)
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	rootTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name + " root CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.RootLifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	if rootTmpl.SerialNumber, err = serial(); err != nil {
		return err
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("localca: root certificate: %w", err)
	}
	root, err := x509.ParseCertificate(rootDER)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: o.Name + " issuing CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(o.CALifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if caTmpl.SerialNumber, err = serial(); err != nil {
		return err
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, root, caKey.Public(), rootKey)
	if err != nil {
		return fmt.Errorf("localca: issuing CA certificate: %w", err)
	}
	rootKeyPEM, err := pemKey(rootKey)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	caKeyPEM, err := pemKey(caKey)
	if err != nil {
		return fmt.Errorf("localca: %w", err)
	}

	files := []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{RootKeyFile, rootKeyPEM, keyMode},
		{KeyFile, caKeyPEM, keyMode},
		{RootCertFile, pemCert(rootDER), certMode},
		{CertFile, pemCert(caDER), certMode},
	}
	var written []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := writeNew(p, f.data, f.mode); err != nil {
			for _, w := range written {
				os.Remove(w)
			}
			return fmt.Errorf("localca: %w", err)
		}
		written = append(written, p)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("localca: %w", err)
	}
	return nil
}

// Options configure a loaded CA. The zero value is fine.
type Options struct {
	// Lifetime of issued certificates when the request does not say
	// (default enroll.DefaultLifetime). At most enroll.MaxLifetime.
	Lifetime time.Duration
	// CRLURL is put into issued certificates as their CRL distribution
	// point, e.g. "http://127.0.0.1:5281/crl" (none if empty).
	CRLURL string
	// CRLValidity is how long a CRL is valid (its nextUpdate); a new one is
	// made after half of it, or at once after a revocation. Default
	// DefaultCRLValidity.
	CRLValidity time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// CA is a loaded embedded CA. It implements enroll.Issuer and is safe for
// concurrent use, also with other processes using the same directory.
type CA struct {
	dir  string
	o    Options
	root *x509.Certificate
	cert *x509.Certificate // the issuing CA
	key  crypto.Signer

	// mu and the CA directory's lock (withLock) are held while cache, the
	// revocation state as last read, is used or changed.
	mu    sync.Mutex
	cache revCache
}

var _ enroll.Issuer = (*CA)(nil)

// Load opens the CA in dir. It does not read the root key. It fails if the
// issuing CA's key does not match its certificate, the issuing CA does not
// chain to the root, or a key file is readable by others than its owner.
func Load(dir string, o Options) (*CA, error) {
	if o.Lifetime == 0 {
		o.Lifetime = enroll.DefaultLifetime
	}
	if o.CRLValidity == 0 {
		o.CRLValidity = DefaultCRLValidity
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	switch {
	case o.Lifetime < 0 || o.Lifetime > enroll.MaxLifetime:
		return nil, fmt.Errorf("localca: lifetime %s: want at most %s", o.Lifetime, enroll.MaxLifetime)
	case o.CRLValidity < time.Minute:
		return nil, fmt.Errorf("localca: CRL validity %s: want at least a minute", o.CRLValidity)
	}
	root, err := readCert(filepath.Join(dir, RootCertFile))
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	cert, err := readCert(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	key, err := readKey(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("localca: %w", err)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("localca: %s does not hold the key of %s", KeyFile, CertFile)
	}
	if err := cert.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("localca: %s is not signed by %s: %w", CertFile, RootCertFile, err)
	}
	if cert.KeyUsage&x509.KeyUsageCRLSign == 0 || len(cert.SubjectKeyId) == 0 {
		return nil, fmt.Errorf("localca: %s cannot sign CRLs (no cRLSign key usage or no subject key id)", CertFile)
	}
	return &CA{dir: dir, o: o, root: root, cert: cert, key: key}, nil
}

// Root returns the root CA certificate.
func (ca *CA) Root() *x509.Certificate { return ca.root }

// Cert returns the issuing CA certificate.
func (ca *CA) Cert() *x509.Certificate { return ca.cert }

// Dir returns the CA directory.
func (ca *CA) Dir() string { return ca.dir }

// Roots returns the root certificate.
func (ca *CA) Roots(ctx context.Context) ([]*x509.Certificate, error) {
	return []*x509.Certificate{ca.root}, nil
}

// Issue signs a client certificate for req.Account: from req.CSR after
// enroll.CheckCSR, from the public key of req.SelfSigned after
// enroll.CheckSelfSigned (its self-signature proves possession of the key),
// or again for the public key of req.Renew, a certificate this CA issued to
// the account that is still valid and not revoked.
// The certificate has subject CN=<account>, the subjectAltName
// enroll.ClientSAN(req.Account) (the xmppAddr and the email address
// <account>, nothing else), basicConstraints CA:FALSE, EKU clientAuth, key usage digitalSignature, a random 128-bit
// serial number, the configured CRL distribution point, and is valid from a
// minute before now for the requested lifetime (the default if 0). The
// result passed enroll.CheckIssued.
func (ca *CA) Issue(ctx context.Context, req *enroll.IssueRequest) (*enroll.Issued, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := req.Check(); err != nil {
		return nil, err
	}
	now := ca.o.Now()
	var pub crypto.PublicKey
	switch {
	case req.CSR != nil:
		if err := enroll.CheckCSR(req.CSR, req.Account); err != nil {
			return nil, err
		}
		pub = req.CSR.PublicKey
	case req.Renew != nil:
		if err := ca.checkRenewable(ctx, req.Renew, req.Account, now); err != nil {
			return nil, err
		}
		pub = req.Renew.PublicKey
	default:
		c, err := enroll.CheckSelfSigned(req.SelfSigned, req.Account, now)
		if err != nil {
			return nil, err
		}
		pub = c.PublicKey
	}
	lifetime := req.Lifetime
	if lifetime == 0 {
		lifetime = ca.o.Lifetime
	}
	if lifetime > enroll.MaxLifetime {
		return nil, enroll.Errorf(enroll.ErrBadRequest, "lifetime %s is longer than %s", lifetime, enroll.MaxLifetime)
	}
	notBefore := now.Add(-time.Minute).Truncate(time.Second)
	notAfter := now.Add(lifetime).Truncate(time.Second)
	if notAfter.After(ca.cert.NotAfter) {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "the issuing CA expires on %s, before the certificate would; renew the CA", ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	san, err := enroll.ClientSAN(req.Account)
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: req.Account.String()},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		ExtraExtensions:       []pkix.Extension{{Id: sasl.OIDSubjectAltName, Value: san}},
	}
	if ca.o.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{ca.o.CRLURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, pub, ca.key)
	if err != nil {
		return nil, fmt.Errorf("localca: sign: %w", err)
	}
	return enroll.CheckIssued([][]byte{der, ca.cert.Raw}, req.Account, pub, now, []*x509.Certificate{ca.root})
}

// serial returns a random positive 128-bit serial number.
func serial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		sn, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("localca: serial number: %w", err)
		}
		if sn.Sign() > 0 {
			return sn, nil
		}
	}
}
