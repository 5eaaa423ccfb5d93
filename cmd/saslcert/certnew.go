package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"mellium.im/xmpp/jid"
	"software.sslmate.com/src/go-pkcs12"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/sasl"
)

const certNewDescription = `Makes a new key and a self-signed client certificate for the account --jid
that saslcert, Prosody with mod_saslcert and the usual clients accept: an end
entity (basicConstraints CA:FALSE), key usage digitalSignature, extended key
usage clientAuth, the id-on-xmppAddr subjectAltName --jid (or --jid/--resource,
which forces that resource at login), and the bare JID also as an rfc822Name
(email address) subjectAltName and as the subject's CN, for clients that read
the account from there (Conversations).

It writes, in --out (default: the current directory), JID-NAME.key (the
private key, PKCS#8 PEM, mode 0600) and JID-NAME.crt (the certificate, PEM),
and never overwrites a file. With --p12 it also writes JID-NAME.p12, a
password-protected PKCS#12 file with both, to import into Android (for
Conversations) or Gajim. Its password is read from --p12-password-file or
SASLCERT_P12_PASSWORD, or asked for on the terminal; it is never a flag. The
file is encrypted with AES-256 (PBES2); --p12-legacy uses 3DES and SHA-1
instead, for importers that cannot read AES (older Android versions).

With --upload it then logs in to the account with its password (SASL PLAIN
over STARTTLS, from --password-file or SASLCERT_PASSWORD, or asked for on the
terminal) and uploads the certificate under --name with XEP-0257, and prints
what the server answered. The server is found at --server (default: the
JID's domain, port 5222); --ca-file trusts a private CA for the server's
certificate.

Exit status: 0 made (and uploaded); 1 failed (a file exists, the login or the
upload was refused); 2 wrong usage.`

// p12Iterations is the PBKDF2 iteration count of --p12 files (go-pkcs12's
// 2048 is too few for a password a person chose).
const p12Iterations = 100_000

// certNewCommand is "cert new".
func certNewCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "new",
		Usage:       "make a key and a self-signed client certificate for an account (and upload it)",
		ArgsUsage:   " ",
		Description: certNewDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "jid", Usage: "the account (bare JID) the certificate is for", Required: true},
			&cli.StringFlag{Name: "name", Usage: "name of the certificate (its XEP-0257 name and file names; default: this machine's host name)"},
			&cli.StringFlag{Name: "resource", Usage: "force this resource at login (the xmppAddr becomes JID/RESOURCE)"},
			&cli.IntFlag{Name: "days", Value: 365, Usage: "days the certificate is valid (1 to 3650)"},
			&cli.StringFlag{Name: "key", Value: "ec", Usage: "key type: ec (P-256), ed25519 or rsa (3072 bits)"},
			&cli.StringFlag{Name: "out", Value: ".", Usage: "`DIR`ectory to write the files to"},
			&cli.BoolFlag{Name: "p12", Usage: "also write a password-protected PKCS#12 file (Android/Conversations, Gajim)"},
			&cli.BoolFlag{Name: "p12-legacy", Usage: "encrypt the PKCS#12 file with 3DES/SHA-1 for importers that cannot read AES"},
			&cli.StringFlag{Name: "p12-password-file", Usage: "read the PKCS#12 password from the first line of `FILE`", EnvVars: []string{"SASLCERT_P12_PASSWORD_FILE"}},
			&cli.BoolFlag{Name: "upload", Usage: "log in with the account's password and upload the certificate (XEP-0257)"},
			&cli.StringFlag{Name: "server", Usage: "c2s `HOST:PORT` for --upload (default: the JID's domain, port 5222)"},
			&cli.StringFlag{Name: "ca-file", Usage: "PEM `FILE` of CA certificates to trust for the server (default: the system's)"},
			&cli.StringFlag{Name: "password-file", Usage: "read the account's password from the first line of `FILE` (--upload)", EnvVars: []string{"SASLCERT_PASSWORD_FILE"}},
			&cli.BoolFlag{Name: "no-cert-management", Usage: "sessions that log in with it may not manage certificates (--upload)"},
		},
		Action: e.certNew,
	}
}

// newCertFiles are the paths cert new writes.
type newCertFiles struct{ key, cert, p12 string }

func (e *env) certNew(c *cli.Context) error {
	name := c.Command.HelpName
	if c.Args().Present() {
		return usageErrorf("%s: unexpected argument %q; see '%s --help'", name, c.Args().First(), name)
	}
	if j, err := jid.Parse(c.String("jid")); err == nil && j.Resourcepart() != "" && j.Localpart() != "" {
		return usageErrorf("%s: --jid %q: want the bare JID; use --jid %s --resource %s to force that resource", name, c.String("jid"), j.Bare(), j.Resourcepart())
	}
	account, err := parseAccount(c.String("jid"))
	if err != nil {
		return usageErrorf("%s: %v", name, err)
	}
	addr := account
	if r := c.String("resource"); r != "" {
		if addr, err = account.WithResource(r); err != nil {
			return usageErrorf("%s: --resource %q: %v", name, r, err)
		}
	}
	days := c.Int("days")
	if days < 1 || days > 3650 {
		return usageErrorf("%s: --days %d: want 1 to 3650", name, days)
	}
	certName := c.String("name")
	if certName == "" {
		if certName, err = os.Hostname(); err != nil || certName == "" {
			certName = "saslcert"
		}
		certName, _, _ = strings.Cut(certName, ".")
	}
	if c.Bool("p12-legacy") && !c.Bool("p12") {
		return usageErrorf("%s: --p12-legacy needs --p12", name)
	}
	for _, f := range []string{"server", "ca-file", "password-file", "no-cert-management"} {
		if c.IsSet(f) && !c.Bool("upload") {
			return usageErrorf("%s: --%s needs --upload", name, f)
		}
	}
	key, err := newKey(c.String("key"))
	if err != nil {
		return usageErrorf("%s: --key: %v", name, err)
	}
	files := newCertFilesIn(c.String("out"), account, certName, c.Bool("p12"))
	for _, f := range []string{files.key, files.cert, files.p12} {
		if _, err := os.Lstat(f); f != "" && !errors.Is(err, fs.ErrNotExist) {
			return cli.Exit(fmt.Sprintf("%s: %s exists; choose another --name or --out (nothing was written)", name, f), exitFailure)
		}
	}
	var p12Password string
	if c.Bool("p12") {
		if p12Password, err = readPassword(e, "PKCS#12 password", c.String("p12-password-file"), "SASLCERT_P12_PASSWORD", true); err != nil {
			return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
		}
	}
	now := e.now()
	der, err := enroll.SelfSigned(key, addr, now.Add(-5*time.Minute).Truncate(time.Second), now.Add(time.Duration(days)*24*time.Hour).Truncate(time.Second))
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	// The same check the server applies: what cert new makes, uploads pass.
	up, err := sasl.CheckUpload(der, account, now, sasl.DefaultPolicy())
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: the new certificate would be refused: %v", name, err), exitFailure)
	}
	if err := writeNewCert(files, key, up.Cert, p12Password, c.Bool("p12-legacy")); err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", name, err), exitFailure)
	}
	fmt.Fprintf(e.stdout, "made %q for %s, valid until %s\n", certName, addr, up.Cert.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "  %s\n  key:         %s\n  certificate: %s\n", up.Fingerprint, files.key, files.cert)
	if files.p12 != "" {
		fmt.Fprintf(e.stdout, "  PKCS#12:     %s\n", files.p12)
	}
	if !c.Bool("upload") {
		return nil
	}
	password, err := readPassword(e, "password of "+account.String(), c.String("password-file"), "SASLCERT_PASSWORD", false)
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v (the files are written; upload later with --upload or your client)", name, err), exitFailure)
	}
	return e.uploadNewCert(c, uploadRequest{
		Account:          account,
		Server:           c.String("server"),
		CAFile:           c.String("ca-file"),
		Password:         password,
		Name:             certName,
		DER:              up.DER,
		NoCertManagement: c.Bool("no-cert-management"),
	})
}

// newKey makes a key of the named type.
func newKey(kind string) (crypto.Signer, error) {
	switch kind {
	case "ec":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	case "rsa":
		return rsa.GenerateKey(rand.Reader, 3072)
	}
	return nil, fmt.Errorf("%q: want ec, ed25519 or rsa", kind)
}

// newCertFilesIn names the files for account's certificate name in dir:
// JID-NAME.key, .crt and (with p12) .p12, with every character of NAME that
// is not a letter, a digit, '.', '-' or '_' replaced by '_'.
func newCertFilesIn(dir string, account jid.JID, name string, p12 bool) newCertFiles {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, name)
	base := filepath.Join(dir, strings.ReplaceAll(account.String(), "/", "_")+"-"+safe)
	f := newCertFiles{key: base + ".key", cert: base + ".crt"}
	if p12 {
		f.p12 = base + ".p12"
	}
	return f
}

// writeNewCert writes the key (0600), the certificate and, if files.p12 is
// set, the PKCS#12 file. Each file is created exclusively; on an error the
// files written so far are removed.
func writeNewCert(files newCertFiles, key crypto.Signer, cert *x509.Certificate, p12Password string, legacy bool) (err error) {
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("encode the key: %w", err)
	}
	var written []string
	defer func() {
		if err != nil {
			for _, f := range written {
				os.Remove(f)
			}
		}
	}()
	write := func(path string, mode os.FileMode, data []byte) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
		if err != nil {
			return err
		}
		written = append(written, path)
		_, err = f.Write(data)
		return errors.Join(err, f.Close())
	}
	if err := write(files.key, 0o600, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return err
	}
	if err := write(files.cert, 0o644, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})); err != nil {
		return err
	}
	if files.p12 == "" {
		return nil
	}
	enc := pkcs12.Modern2023.WithIterations(p12Iterations)
	if legacy {
		enc = pkcs12.LegacyDES
	}
	p12, err := enc.Encode(key, cert, nil, p12Password)
	if err != nil {
		return fmt.Errorf("encode the PKCS#12 file: %w", err)
	}
	return write(files.p12, 0o600, p12)
}
