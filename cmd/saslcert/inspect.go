package main

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
)

// maxInputSize bounds what inspect reads from one file: certificate files
// are a few KiB; anything this large is the wrong file.
const maxInputSize = 16 << 20

const inspectDescription = `Prints, for every certificate in each FILE, what saslcert sees in it: the
SHA-256 fingerprint, subject, issuer, validity, key, signature algorithm,
key usages, every id-on-xmppAddr (normalised, and the unusable ones with the
reason), other otherName entries and DNS names.

FILE is PEM (any number of CERTIFICATE blocks; other blocks, such as requests
or keys, are skipped and never printed) or a single DER certificate. "-" reads
standard input.

With --jid, each certificate also gets a verdict: whether it may be uploaded
(XEP-0257) for that account now, under the default policy.

Exit status: 0 every certificate was read (and, with --jid, is usable);
1 at least one certificate is not usable for the JID; 2 wrong usage or a
FILE that cannot be read or holds no certificate.`

// inspectCommand is "cert inspect".
func inspectCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:        "inspect",
		Usage:       "show what saslcert sees in certificates, and whether they are usable for an account",
		ArgsUsage:   "FILE...",
		Description: inspectDescription,
		Flags: []cli.Flag{
			&cli.StringFlag{
				Name:  "jid",
				Usage: "give a verdict: may each certificate be uploaded for this account (a bare JID)?",
			},
			&cli.BoolFlag{
				Name:  "json",
				Usage: "print one JSON object per certificate, one per line",
			},
		},
		Action: e.inspect,
	}
}

func (e *env) inspect(c *cli.Context) error {
	name := c.Command.HelpName
	files := c.Args().Slice()
	if len(files) == 0 {
		return usageErrorf("%s: missing FILE (use - for standard input); see '%s --help'", name, name)
	}
	for _, f := range files {
		if len(f) > 1 && strings.HasPrefix(f, "-") {
			return usageErrorf("%s: flag %q after FILE: put flags before the files (a file whose name starts with - can be given as ./%s)", name, f, f)
		}
	}
	in := &inspector{
		stdout: e.stdout,
		stderr: e.stderr,
		stdin:  c.App.Reader,
		log:    e.log,
		now:    e.now(),
		json:   c.Bool("json"),
	}
	if c.IsSet("jid") {
		account, err := parseAccount(c.String("jid"))
		if err != nil {
			return usageErrorf("%s: %v", name, err)
		}
		in.account, in.check = account, true
	}
	for _, f := range files {
		in.file(f)
	}
	switch {
	case in.unreadable > 0:
		// Each problem has been reported already.
		return cli.Exit("", exitUsage)
	case in.unusable > 0:
		return cli.Exit(fmt.Sprintf("%d of %d certificates not usable for %s", in.unusable, in.certs, in.account), exitFailure)
	}
	return nil
}

// parseAccount parses s as the bare JID of an account. A JID the XMPP server
// would read as another account (sasl.ErrJIDForms, e.g. "straße@" that
// Prosody binds as "strasse@") is refused with the two forms.
func parseAccount(s string) (jid.JID, error) {
	j, err := sasl.ParseJID(s)
	switch {
	case errors.Is(err, sasl.ErrJIDForms):
		return jid.JID{}, fmt.Errorf("--jid %q: not usable: %w", s, err)
	case err != nil:
		return jid.JID{}, fmt.Errorf("--jid %q: not a valid JID: %v", s, err)
	case j.Localpart() == "":
		return jid.JID{}, fmt.Errorf("--jid %q: want an account, local@domain", s)
	case j.Resourcepart() != "":
		return jid.JID{}, fmt.Errorf("--jid %q: want a bare JID (an account), without the resource /%s", s, j.Resourcepart())
	}
	return j, nil
}

// inspector holds the state of one "cert inspect" run.
type inspector struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	log            *slog.Logger
	now            time.Time // one instant for the whole run
	account        jid.JID
	check          bool // --jid was given
	json           bool

	printed    int // certificates printed
	certs      int // certificates judged
	unusable   int // certificates not usable for account
	unreadable int // problems that make the exit status 2
}

// certData is one certificate's DER as found in a file.
type certData struct {
	der   []byte
	block int // 1-based PEM block number; 0 if the file is DER
}

// file inspects every certificate in the file called name ("-" for stdin).
func (in *inspector) file(name string) {
	display := name
	if name == "-" {
		display = "(stdin)"
	}
	data, err := in.read(name)
	if err != nil {
		in.problem(display, err)
		return
	}
	certs, skipped, err := splitCerts(data)
	in.log.Debug("read", "file", display, "bytes", len(data), "certificates", len(certs))
	for _, s := range skipped {
		fmt.Fprintf(in.stderr, "saslcert: %s: note: skipped PEM block %d (%s): not a certificate; its contents are not shown\n",
			display, s.block, printable(s.typ))
	}
	for i, cd := range certs {
		in.cert(display, i+1, len(certs), cd)
	}
	switch {
	case err != nil:
		in.problem(display, err)
	case len(certs) == 0 && len(skipped) > 0:
		in.problem(display, errors.New("no certificate found (only other PEM blocks)"))
	case len(certs) == 0:
		in.problem(display, errors.New("no certificate found"))
	}
}

// read returns the contents of the file called name, or of stdin for "-".
func (in *inspector) read(name string) ([]byte, error) {
	var r io.Reader = in.stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, pathErr(err)
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInputSize+1))
	switch {
	case err != nil:
		return nil, pathErr(err)
	case len(data) > maxInputSize:
		return nil, fmt.Errorf("larger than %d MiB: not a certificate file", maxInputSize>>20)
	case len(data) == 0:
		return nil, errors.New("empty")
	}
	return data, nil
}

// pathErr drops the operation and path from err: messages name the file
// already.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// skippedBlock is a PEM block that is not a certificate.
type skippedBlock struct {
	block int
	typ   string
}

var pemBegin = []byte("-----BEGIN")

// splitCerts finds the certificates in data: PEM if data contains
// "-----BEGIN", otherwise one DER certificate (which the caller parses). It
// returns an error if some PEM block cannot be decoded, together with the
// certificates it did find.
func splitCerts(data []byte) ([]certData, []skippedBlock, error) {
	if !bytes.Contains(data, pemBegin) {
		return []certData{{der: data}}, nil, nil
	}
	var (
		certs   []certData
		skipped []skippedBlock
		n       int
	)
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		n++
		if b.Type != "CERTIFICATE" {
			skipped = append(skipped, skippedBlock{block: n, typ: b.Type})
			continue
		}
		certs = append(certs, certData{der: b.Bytes, block: n})
	}
	// pem.Decode skips a block it cannot decode and goes on with the next.
	if bad := bytes.Count(data, pemBegin) - n; bad > 0 {
		return certs, skipped, fmt.Errorf("%d of %d PEM blocks cannot be decoded (bad base64, or no matching END line)", bad, n+bad)
	}
	return certs, skipped, nil
}

// cert inspects certificate index of count in file.
func (in *inspector) cert(file string, index, count int, cd certData) {
	cert, sans, err := sasl.ParseCertificate(cd.der)
	if err != nil {
		if cd.block == 0 {
			in.problem(file, fmt.Errorf("not PEM, and not one DER certificate: %v", err))
		} else {
			in.problem(file, fmt.Errorf("certificate %d of %d (PEM block %d): %v", index, count, cd.block, err))
		}
		return
	}
	r := describe(cert, sans, cd.der, in.now)
	r.File, r.Index, r.Count = file, index, count
	if in.check {
		r.Verdict = verdictFor(cd.der, in.account, in.now)
		in.certs++
		if !r.Verdict.Usable {
			in.unusable++
		}
	}
	if in.json {
		enc := json.NewEncoder(in.stdout)
		enc.SetEscapeHTML(false)
		// Writing to stdout fails only if it is closed; nothing to report to.
		_ = enc.Encode(r)
	} else {
		if in.printed > 0 {
			fmt.Fprintln(in.stdout)
		}
		r.writeText(in.stdout)
	}
	in.printed++
}

// verdictFor decides whether der may be uploaded for account at now.
func verdictFor(der []byte, account jid.JID, now time.Time) *verdict {
	v := &verdict{JID: account.String()}
	up, err := sasl.CheckUpload(der, account, now, sasl.DefaultPolicy())
	var re *sasl.RefusalError
	switch {
	case err == nil:
		v.Usable, v.Resource = true, up.Resource
	case errors.As(err, &re):
		v.Reason, v.Detail = string(re.Reason), re.Detail
	default:
		v.Reason, v.Detail = "error", err.Error()
	}
	return v
}

// problem reports that file cannot be (fully) read.
func (in *inspector) problem(file string, err error) {
	in.unreadable++
	fmt.Fprintf(in.stderr, "saslcert: %s: %v\n", file, err)
}
