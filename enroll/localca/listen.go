package localca

import (
	"context"
	"fmt"
	"net"

	"github.com/saslcert/saslcert/httpserve"
)

// ListenLoopback listens on addr ("127.0.0.1:port", "[::1]:port" or
// "localhost:port") for the CRL handler, refusing any address that is not a
// loopback one: the CRL is published to XMPP servers on the same host.
func ListenLoopback(ctx context.Context, addr string) (net.Listener, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("localca: CRL listener %q: %w", addr, err)
	}
	if !httpserve.IsLoopback(host) {
		return nil, fmt.Errorf("localca: CRL listener %q: not a loopback address (use 127.0.0.1, ::1 or localhost)", addr)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("localca: CRL listener: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("localca: CRL listener %q resolved to %s, not a loopback address", addr, ln.Addr())
	}
	return ln, nil
}
