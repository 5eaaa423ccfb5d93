package component

import (
	"context"
	"encoding/xml"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/xep0257"
)

// fakeCerts and fakeAuth stand in for the real services to inject faults.
type fakeCerts func(ctx context.Context, from jid.JID, req xep0257.Request) (xml.TokenReader, error)

func (f fakeCerts) Process(ctx context.Context, from jid.JID, _ xep0257.Auth, req xep0257.Request) (xml.TokenReader, error) {
	return f(ctx, from, req)
}

func (f fakeCerts) MayManage(context.Context, jid.JID, xep0257.Auth) error { return nil }

type fakeAuth func(ctx context.Context, req sasl.Request) (sasl.Grant, error)

func (f fakeAuth) Authorize(ctx context.Context, req sasl.Request) (sasl.Grant, error) {
	return f(ctx, req)
}

// gate blocks requests until released and counts the ones started.
type gate struct {
	started chan struct{}
	release chan struct{}
}

func newGate() *gate { return &gate{started: make(chan struct{}, 100), release: make(chan struct{})} }

func (g *gate) certs() fakeCerts {
	return func(ctx context.Context, _ jid.JID, _ xep0257.Request) (xml.TokenReader, error) {
		g.started <- struct{}{}
		select {
		case <-g.release:
			return xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: xep0257.NS, Local: "items"}}), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *gate) auth() fakeAuth {
	return func(ctx context.Context, _ sasl.Request) (sasl.Grant, error) {
		g.started <- struct{}{}
		select {
		case <-g.release:
			return sasl.Grant{JID: jid.MustParse("alice@example.org")}, nil
		case <-ctx.Done():
			return sasl.Grant{}, &sasl.Failure{Condition: sasl.TemporaryAuthFailure, Reason: "timeout", Err: ctx.Err()}
		}
	}
}

func (g *gate) waitStarted(t *testing.T) {
	t.Helper()
	select {
	case <-g.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the request did not start")
	}
}

const alicePhone = "alice@example.org/phone"

func TestBusy(t *testing.T) {
	g := newGate()
	e := startFakeEnv(t, func(c *Config) { c.MaxInFlight = 1 }, g.certs(), g.auth())

	e.fc.send(direct("slow", "get", alicePhone, itemsXML))
	g.waitStarted(t)

	// The slot is taken: every kind of request is refused at once, and the
	// stream keeps working (the handler did not block).
	checkError(t, e.fc.roundTrip(t, direct("b1", "get", alicePhone, itemsXML)), "b1", "wait", "resource-constraint")
	n := e.fc.roundTrip(t, delegation("b2", domain, "from='"+alicePhone+"' id='in' type='get'", itemsXML))
	in := innerOf(t, n, "b2", "in", alicePhone)
	checkErrorChild(t, in, "wait", "resource-constraint")
	n = e.fc.roundTrip(t, pluginIQ("b3", "get", domain, lookupXML("", []byte("der"))))
	er := checkError(t, n, "b3", "wait", "resource-constraint")
	if er.child("urn:ietf:params:xml:ns:xmpp-sasl", "temporary-auth-failure") == nil {
		t.Errorf("busy lookup without <temporary-auth-failure/>: %s", n)
	}
	checkResult(t, e.fc.roundTrip(t, "<iq type='get' id='p' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>"), "p", domain)

	close(g.release)
	checkResult(t, e.fc.expect(t), "slow", alicePhone)
	// The slot is free again.
	checkResult(t, e.fc.roundTrip(t, direct("again", "get", alicePhone, itemsXML)), "again", alicePhone)
}

func TestProcessPanics(t *testing.T) {
	e := startFakeEnv(t, nil, fakeCerts(func(context.Context, jid.JID, xep0257.Request) (xml.TokenReader, error) {
		panic("boom")
	}), fakeAuth(func(context.Context, sasl.Request) (sasl.Grant, error) { panic("boom") }))
	checkError(t, e.fc.roundTrip(t, direct("p1", "get", alicePhone, itemsXML)), "p1", "wait", "internal-server-error")
	n := e.fc.roundTrip(t, delegation("p2", domain, "from='"+alicePhone+"' id='in' type='get'", itemsXML))
	checkErrorChild(t, innerOf(t, n, "p2", "in", alicePhone), "wait", "internal-server-error")
	n = e.fc.roundTrip(t, pluginIQ("p3", "get", domain, lookupXML("", []byte("der"))))
	checkError(t, n, "p3", "wait", "internal-server-error")
	checkResult(t, e.fc.roundTrip(t, "<iq type='get' id='p' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>"), "p", domain)
	if !strings.Contains(e.log.String(), "panic") {
		t.Error("the panic was not logged")
	}
}

func TestNonStanzaErrorFromProcess(t *testing.T) {
	e := startFakeEnv(t, nil, fakeCerts(func(context.Context, jid.JID, xep0257.Request) (xml.TokenReader, error) {
		return nil, context.DeadlineExceeded
	}), fakeAuth(func(context.Context, sasl.Request) (sasl.Grant, error) {
		return sasl.Grant{}, context.DeadlineExceeded // not a *sasl.Failure
	}))
	checkError(t, e.fc.roundTrip(t, direct("p1", "get", alicePhone, itemsXML)), "p1", "wait", "resource-constraint")
	n := e.fc.roundTrip(t, pluginIQ("p3", "get", domain, lookupXML("", []byte("der"))))
	er := checkError(t, n, "p3", "wait", "internal-server-error")
	if er.child("urn:ietf:params:xml:ns:xmpp-sasl", "temporary-auth-failure") == nil {
		t.Errorf("no <temporary-auth-failure/>: %s", n)
	}
}

func TestShutdownDrains(t *testing.T) {
	g := newGate()
	e := startFakeEnv(t, nil, g.certs(), g.auth())
	e.fc.send(direct("slow", "get", alicePhone, itemsXML))
	g.waitStarted(t)

	stopped := make(chan error, 1)
	go func() { stopped <- e.stop() }()
	// New requests are refused while the one in flight finishes.
	waitFor(t, "the drain", func() bool {
		e.comp.work.mu.Lock()
		defer e.comp.work.mu.Unlock()
		return e.comp.work.closed
	})
	n := e.fc.roundTrip(t, direct("late", "get", alicePhone, itemsXML))
	er := checkError(t, n, "late", "wait", "resource-constraint")
	if !strings.Contains(er.child(nsStanzas, "text").Text, "shutting down") {
		t.Errorf("refusal during shutdown: %s", n)
	}
	select {
	case err := <-stopped:
		t.Fatalf("Run returned (%v) with a request in flight", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(g.release)
	checkResult(t, e.fc.expect(t), "slow", alicePhone)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	e.fc.waitClosed(t, time.Second)
	if !e.fc.ended {
		t.Error("the stream was not closed with </stream:stream>")
	}
	select {
	case <-e.comp.Connected():
		t.Error("Connected() still closed after Run returned")
	default:
	}
}

func TestShutdownGivesUpOnStuckRequests(t *testing.T) {
	var cancelled atomic.Bool
	e := startFakeEnv(t, func(c *Config) { c.RequestTimeout = 300 * time.Millisecond },
		fakeCerts(func(ctx context.Context, _ jid.JID, _ xep0257.Request) (xml.TokenReader, error) {
			<-ctx.Done()
			cancelled.Store(true)
			return nil, ctx.Err()
		}), nil)
	e.fc.send(direct("stuck", "get", alicePhone, itemsXML))
	waitFor(t, "the request", func() bool { return e.comp.work.count() == 1 })
	start := time.Now()
	if err := e.stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if !cancelled.Load() {
		t.Error("the stuck request was not cancelled")
	}
}

func TestShutdownServerDoesNotCloseStream(t *testing.T) {
	srv := newFakeServer(t, testSecret)
	srv.mu.Lock()
	srv.noCloseReply = true
	srv.mu.Unlock()
	cfg, _ := testConfig(t, srv.addr())
	comp, err := newComponent(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, comp)
	fc := srv.next(t)
	waitConnected(t, comp)
	<-fc.auto // the session list query
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < closeTimeout-100*time.Millisecond || d > closeTimeout+2*time.Second {
		t.Errorf("shutdown took %v, want about %v", d, closeTimeout)
	}
	fc.waitClosed(t, time.Second)
	if !fc.ended {
		t.Error("no </stream:stream> sent")
	}
}

func TestShutdownWhileDisconnected(t *testing.T) {
	srv := newFakeServer(t, testSecret)
	cfg, _ := testConfig(t, srv.addr())
	srv.ln.Close() // nothing listens: every dial fails
	comp, err := newComponent(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, comp)
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("shutdown took %v", d)
	}
	if comp.Connects() != 0 {
		t.Errorf("Connects = %d", comp.Connects())
	}
}

func TestReconnect(t *testing.T) {
	e := startEnv(t, nil)
	// The server ends the stream cleanly (a restart).
	e.fc.send("</stream:stream>")
	fc := e.srv.next(t)
	waitFor(t, "the second connect", func() bool { return e.comp.Connects() == 2 })
	waitConnected(t, e.comp)
	e.fc = fc
	checkResult(t, fc.roundTrip(t, "<iq type='get' id='p' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>"), "p", domain)

	// The TCP connection drops.
	fc = e.reconnect(t)
	checkResult(t, fc.roundTrip(t, "<iq type='get' id='p' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>"), "p", domain)

	// The server sends garbage.
	fc.send("<iq type='get' id='x' from='example.org' to='" + compJID + "'><unclosed></iq>")
	fc.waitClosed(t, 5*time.Second)
	fc = e.srv.next(t)
	waitConnected(t, e.comp)
	e.fc = fc
	checkResult(t, fc.roundTrip(t, "<iq type='get' id='p' from='example.org' to='"+compJID+"'><ping xmlns='urn:xmpp:ping'/></iq>"), "p", domain)
}

func TestReconnectAfterRejectedHandshake(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.MinBackoff, c.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond })
	e.srv.mu.Lock()
	e.srv.rejectHandshake = true
	e.srv.mu.Unlock()
	before := e.srv.accepted()
	e.fc.conn.Close()
	waitFor(t, "retries", func() bool { return e.srv.accepted() >= before+4 })
	select {
	case <-e.comp.Connected():
		t.Fatal("connected with a rejected handshake")
	default:
	}
	if !strings.Contains(e.log.String(), "not-authorized") {
		t.Error("the rejected handshake was not logged")
	}
	if strings.Contains(e.log.String(), testSecret) {
		t.Error("the secret appears in the log")
	}
	e.srv.mu.Lock()
	e.srv.rejectHandshake = false
	e.srv.mu.Unlock()
	e.fc = e.srv.next(t)
	waitConnected(t, e.comp)
}

func TestPingDetectsDeadServer(t *testing.T) {
	srv := newFakeServer(t, testSecret)
	srv.mu.Lock()
	srv.noAutoPing = true
	srv.mu.Unlock()
	cfg, buf := testConfig(t, srv.addr())
	cfg.PingInterval, cfg.RequestTimeout = 50*time.Millisecond, 200*time.Millisecond
	comp, err := newComponent(cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	run(t, comp)
	fc := srv.next(t)
	n := fc.expect(t)
	if n.child("urn:xmpp:ping", "ping") == nil || n.attr("to") != domain || n.attr("from") != compJID {
		t.Fatalf("want a ping to the server, got %s", n)
	}
	fc.waitClosed(t, 5*time.Second)
	srv.next(t)
	if !strings.Contains(buf.String(), "ping failed") {
		t.Error("the ping failure was not logged")
	}
}

func TestPingAnswered(t *testing.T) {
	e := startEnv(t, func(c *Config) { c.PingInterval = 20 * time.Millisecond })
	// Several pings are sent and answered automatically; the link stays up.
	for range 3 {
		select {
		case n := <-e.fc.auto:
			_ = n
		case <-time.After(5 * time.Second):
			t.Fatal("no ping")
		}
	}
	time.Sleep(50 * time.Millisecond)
	if e.comp.Connects() != 1 {
		t.Errorf("Connects = %d after answered pings", e.comp.Connects())
	}
}

func TestReplyAfterReconnectGoesToTheNewStream(t *testing.T) {
	g := newGate()
	e := startFakeEnv(t, nil, g.certs(), g.auth())
	e.fc.send(delegation("o", domain, "from='"+alicePhone+"' id='in' type='get'", itemsXML))
	g.waitStarted(t)
	fc := e.reconnect(t)
	close(g.release)
	innerOf(t, fc.expect(t), "o", "in", alicePhone)
}

// A reply that cannot be built (its reader fails, panics half-way, does not
// close its elements, or is larger than Prosody accepts from a component,
// which would make it close the link) is never half-written: the request gets the
// fallback error and the link stays up.
func TestUnsendableReply(t *testing.T) {
	partial := func(last xml.TokenReader) xml.TokenReader {
		return xmlstream.MultiReader(xmlstream.Token(xml.StartElement{Name: xml.Name{Space: xep0257.NS, Local: "items"}}), last)
	}
	for _, tc := range []struct {
		name  string
		reply func() xml.TokenReader
	}{
		{"reader fails", func() xml.TokenReader {
			return partial(xmlstream.ReaderFunc(func() (xml.Token, error) { return nil, errors.New("boom") }))
		}},
		{"reader panics", func() xml.TokenReader {
			return partial(xmlstream.ReaderFunc(func() (xml.Token, error) { panic("boom") }))
		}},
		{"unclosed element", func() xml.TokenReader { return partial(xmlstream.MultiReader()) }},
		{"larger than Prosody accepts from a component", func() xml.TokenReader {
			return partial(xmlstream.MultiReader(xmlstream.Token(xml.CharData(strings.Repeat("A", maxStanzaSize))),
				xmlstream.Token(xml.EndElement{Name: xml.Name{Space: xep0257.NS, Local: "items"}})))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startFakeEnv(t, nil, fakeCerts(func(context.Context, jid.JID, xep0257.Request) (xml.TokenReader, error) {
				return tc.reply(), nil
			}), fakeAuth(func(context.Context, sasl.Request) (sasl.Grant, error) { return sasl.Grant{}, nil }))
			checkError(t, e.fc.roundTrip(t, direct("u1", "get", alicePhone, itemsXML)), "u1", "wait", "internal-server-error")
			checkResult(t, e.fc.roundTrip(t, direct("p", "get", alicePhone, "<ping xmlns='urn:xmpp:ping'/>")), "p", alicePhone)
			if e.comp.Connects() != 1 || e.srv.accepted() != 1 {
				t.Fatalf("%d connects, %d connections: the link was dropped", e.comp.Connects(), e.srv.accepted())
			}
		})
	}
}
