// Package xmppclient is a lean XMPP client for saslcert's demo, tests and
// benchmarks: STARTTLS with an optional client certificate, SASL EXTERNAL or
// PLAIN, resource binding, and a serving loop so IQs get their replies.
package xmppclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
)

// Config says how to connect.
type Config struct {
	Addr     string           // c2s address, e.g. "127.0.0.1:5222"
	JID      jid.JID          // account; the server picks the resource (mellium v0.23.0 sends an empty <resource/> at bind)
	RootCAs  *x509.CertPool   // trust for the server certificate (ServerName = JID's domain)
	Cert     *tls.Certificate // client certificate presented in TLS, if any
	Password string           // non-empty: SASL PLAIN; empty: SASL EXTERNAL
	Authzid  string           // EXTERNAL authorization identity; "" sends "="
	Timeout  time.Duration    // for connecting and negotiating; default 10 s
}

// Client is a negotiated session whose incoming stanzas are being served.
type Client struct {
	*xmpp.Session
	done chan error
}

// Dial connects, negotiates STARTTLS, authenticates and binds. The returned
// error wraps the SASL failure (mellium's saslerr) when authentication fails.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("xmppclient: dial %s: %w", cfg.Addr, err)
	}
	tlsCfg := &tls.Config{
		ServerName: cfg.JID.Domainpart(),
		RootCAs:    cfg.RootCAs,
		MinVersion: tls.VersionTLS12,
	}
	if cfg.Cert != nil {
		c := *cfg.Cert
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &c, nil }
	}
	mech, identity := sasl.External, cfg.Authzid
	if cfg.Password != "" {
		mech, identity = msasl.Plain, ""
	}
	tee := &tailBuffer{max: 8 << 10}
	features := []xmpp.StreamFeature{xmpp.StartTLS(tlsCfg), xmpp.SASL(identity, cfg.Password, mech), xmpp.BindResource()}
	s, err := xmpp.NewSession(ctx, cfg.JID.Domain(), cfg.JID, conn, 0, xmpp.NewNegotiator(func(*xmpp.Session, *xmpp.StreamConfig) xmpp.StreamConfig {
		return xmpp.StreamConfig{Features: features, TeeIn: tee}
	}))
	tee.stop()
	if err != nil {
		conn.Close()
		if f := parseFailure(tee.bytes()); f != nil {
			f.Err = err
			return nil, f
		}
		return nil, fmt.Errorf("xmppclient: negotiate as %s: %w", cfg.JID, err)
	}
	c := &Client{Session: s, done: make(chan error, 1)}
	go func() { c.done <- s.Serve(nil) }()
	return c, nil
}

// Done is closed-with-value when the stream ends: it yields Serve's error
// (nil for a clean close; a stream error when the server closed us).
func (c *Client) Done() <-chan error { return c.done }

// Close ends the stream and the connection.
func (c *Client) Close() error {
	err := c.Session.Close()
	cerr := c.Session.Conn().Close()
	return errors.Join(err, cerr)
}
