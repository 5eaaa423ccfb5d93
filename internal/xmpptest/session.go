// Package xmpptest connects two in-process XMPP sessions for tests: a client
// and a server over net.Pipe, with stream negotiation skipped, each served by
// its own handler.
package xmpptest

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/stream"
)

// Pair is a client session and a server session talking to each other.
type Pair struct {
	Client *xmpp.Session
	Server *xmpp.Session

	served chan error // the results of the two Serve loops
}

// Options configure NewPair. Zero fields take the defaults shown.
type Options struct {
	ClientJID     jid.JID      // "alice@example.org/phone"
	ServerJID     jid.JID      // "example.org"
	StreamNS      string       // stanza.NSClient
	ClientHandler xmpp.Handler // nil: ignore everything
	ServerHandler xmpp.Handler // nil: ignore everything
}

// NewPair starts a client and a server session over net.Pipe and serves both
// until the test ends; tb fails if either Serve loop returns an error other
// than the end of the stream.
func NewPair(tb testing.TB, o Options) *Pair {
	tb.Helper()
	if o.ClientJID.Equal(jid.JID{}) {
		o.ClientJID = jid.MustParse("alice@example.org/phone")
	}
	if o.ServerJID.Equal(jid.JID{}) {
		o.ServerJID = jid.MustParse("example.org")
	}
	if o.StreamNS == "" {
		o.StreamNS = stanza.NSClient
	}
	cc, sc := net.Pipe()
	p := &Pair{served: make(chan error, 2)}
	var err error
	p.Client, err = session(o.ClientJID, o.ServerJID, o.StreamNS, cc, 0)
	if err != nil {
		tb.Fatalf("xmpptest: client session: %v", err)
	}
	p.Server, err = session(o.ServerJID, o.ClientJID, o.StreamNS, sc, xmpp.Received)
	if err != nil {
		tb.Fatalf("xmpptest: server session: %v", err)
	}
	go func() { p.served <- p.Client.Serve(o.ClientHandler) }()
	go func() { p.served <- p.Server.Serve(o.ServerHandler) }()
	tb.Cleanup(func() {
		// Closing the pipe ends both input streams.
		_ = p.Client.Close()
		_ = p.Server.Close()
		_ = cc.Close()
		_ = sc.Close()
		for range 2 {
			if err := <-p.served; err != nil && !isClosed(err) {
				tb.Errorf("xmpptest: Serve: %v", err)
			}
		}
	})
	return p
}

// isClosed reports whether err is what Serve returns when the pipe closes
// under it.
func isClosed(err error) bool {
	s := err.Error()
	return strings.Contains(s, io.ErrClosedPipe.Error()) || strings.Contains(s, "EOF")
}

// session makes a ready session for local talking to remote over rw. The
// peer's stream header is simulated: the negotiator reads a synthetic one and
// nothing is written for ours.
func session(local, remote jid.JID, ns string, rw io.ReadWriter, state xmpp.SessionState) (*xmpp.Session, error) {
	header := fmt.Sprintf(`<stream:stream xmlns='%s' xmlns:stream='%s' version='1.0' id='xmpptest' from='%s' to='%s'>`,
		ns, stream.NS, remote, local)
	conn := struct {
		io.Reader
		io.Writer
	}{
		Reader: io.MultiReader(strings.NewReader(header), rw, strings.NewReader(`</stream:stream>`)),
		Writer: rw,
	}
	location, origin := remote, local
	if state&xmpp.Received != 0 {
		location, origin = local, remote
	}
	return xmpp.NewSession(context.Background(), location, origin, conn, state, nopNegotiator(state, ns))
}

// nopNegotiator reads the peer's stream header and declares the session
// ready without sending anything.
func nopNegotiator(state xmpp.SessionState, ns string) xmpp.Negotiator {
	return func(ctx context.Context, in, out *stream.Info, s *xmpp.Session, _ any) (xmpp.SessionState, io.ReadWriter, any, error) {
		r := s.TokenReader()
		defer r.Close()
		for {
			tok, err := r.Token()
			if err != nil {
				return state, nil, nil, err
			}
			start, ok := tok.(xml.StartElement)
			if !ok {
				continue // declaration or white space
			}
			if start.Name.Space != stream.NS || start.Name.Local != "stream" {
				return state, nil, nil, fmt.Errorf("xmpptest: expected a stream header, got <%s>", start.Name.Local)
			}
			if err := in.FromStartElement(start); err != nil {
				return state, nil, nil, err
			}
			out.XMLNS = ns
			out.ID = "xmpptest"
			return state | xmpp.Ready, nil, nil, nil
		}
	}
}

// StampFrom wraps h so that every stanza without a 'from' attribute gets
// from, as an XMPP server stamps the sender's full JID on what its clients
// send.
func StampFrom(from jid.JID, h xmpp.Handler) xmpp.Handler {
	return xmpp.HandlerFunc(func(t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
		for _, a := range start.Attr {
			if a.Name.Local == "from" && a.Name.Space == "" && a.Value != "" {
				return h.HandleXMPP(t, start)
			}
		}
		s := start.Copy()
		s.Attr = append(s.Attr, xml.Attr{Name: xml.Name{Local: "from"}, Value: from.String()})
		return h.HandleXMPP(t, &s)
	})
}
