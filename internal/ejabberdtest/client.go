package ejabberdtest

import (
	"context"
	"crypto/tls"
	"net"

	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
)

// TLSConfig is a client TLS config that trusts the server's certificate and
// presents certs (if any) as the client certificate (with its chain).
func (s *Server) TLSConfig(certs ...tls.Certificate) *tls.Config {
	return &tls.Config{
		ServerName:   s.Domain,
		RootCAs:      s.RootCAs,
		Certificates: certs,
		MinVersion:   tls.VersionTLS12,
	}
}

// DialC2S opens a TCP connection to the c2s port.
func (s *Server) DialC2S(ctx context.Context) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, "tcp", s.C2SAddr)
}

// DialClient connects to the c2s port and negotiates a client session as
// origin with features; on error the connection is closed.
func (s *Server) DialClient(ctx context.Context, origin jid.JID, features ...xmpp.StreamFeature) (*xmpp.Session, error) {
	conn, err := s.DialC2S(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := xmpp.NewClientSession(ctx, origin, conn, features...)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return sess, nil
}
