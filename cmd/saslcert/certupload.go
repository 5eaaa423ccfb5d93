package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/urfave/cli/v2"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/internal/xmppclient"
	"github.com/saslcert/saslcert/xep0257"
)

// uploadTimeout bounds cert new --upload's login and request.
const uploadTimeout = 30 * time.Second

// uploadRequest is what cert new --upload sends, and where.
type uploadRequest struct {
	Account          jid.JID // bare
	Server           string  // host:port; "" the account's domain, port 5222
	CAFile           string  // PEM roots for the server's certificate; "" the system's
	Password         string
	Name             string
	DER              []byte
	NoCertManagement bool
}

// uploadNewCert logs in to r.Account with its password and uploads r.DER
// with XEP-0257 (an <append/> without 'to', for the account itself), then
// prints what the server answered. A refused login or upload is the
// command's failure, with the server's condition and text.
func (e *env) uploadNewCert(c *cli.Context, r uploadRequest) error {
	name := c.Command.HelpName
	fail := func(format string, args ...any) error {
		return cli.Exit(fmt.Sprintf("%s: "+format, append([]any{name}, args...)...), exitFailure)
	}
	addr := r.Server
	if addr == "" {
		addr = net.JoinHostPort(r.Account.Domainpart(), "5222")
	} else if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "5222")
	}
	var roots *x509.CertPool
	if r.CAFile != "" {
		pemData, err := os.ReadFile(r.CAFile)
		if err != nil {
			return fail("--ca-file: %v", err)
		}
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pemData) {
			return fail("--ca-file %s: no PEM certificate in it", r.CAFile)
		}
	}
	ctx, cancel := context.WithTimeout(c.Context, uploadTimeout)
	defer cancel()
	cl, err := xmppclient.Dial(ctx, xmppclient.Config{Addr: addr, JID: r.Account, RootCAs: roots, Password: r.Password, Timeout: uploadTimeout})
	if err != nil {
		var ae *xmppclient.AuthError
		if errors.As(err, &ae) {
			return fail("log in to %s at %s: the server refused the password: %v", r.Account, addr, ae)
		}
		return fail("log in to %s at %s: %v", r.Account, addr, err)
	}
	defer cl.Close()
	err = xep0257.AppendCert(ctx, cl.Session, jid.JID{}, r.Name, r.DER, r.NoCertManagement)
	var se stanza.Error
	switch {
	case errors.As(err, &se):
		text := se.Text[""]
		for _, t := range se.Text {
			if text == "" {
				text = t
			}
		}
		if text == "" {
			return fail("upload: the server refused the certificate: %s", se.Condition)
		}
		return fail("upload: the server refused the certificate: %s: %s", se.Condition, text)
	case err != nil:
		return fail("upload: %v", err)
	}
	fmt.Fprintf(e.stdout, "uploaded %s to %s at %s: the server accepted it; log in with SASL EXTERNAL using the key and certificate above\n",
		strconv.Quote(r.Name), r.Account, addr)
	return nil
}
