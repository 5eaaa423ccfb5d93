package component

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"time"

	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/component"
	"mellium.im/xmpp/jid"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/stanza"

	"github.com/saslcert/saslcert/enrollcmd"
	"github.com/saslcert/saslcert/xep0257"
)

// closeTimeout bounds each step of closing a stream on shutdown.
const closeTimeout = 2 * time.Second

// errLinkClosed is returned to requests waiting on a link that went away.
var errLinkClosed = errors.New("component: the stream to the server ended")

// link is one authenticated stream to the server and everything bound to it:
// the mux serving it, the IQs the component sent on it and is waiting for,
// and its ping and post-connect goroutines.
type link struct {
	c       *Component
	sess    *xmpp.Session
	conn    net.Conn
	workCtx context.Context // parent of every request's context
	mux     *mux.ServeMux

	done    chan struct{} // closed by end
	endOnce sync.Once
	wg      sync.WaitGroup // ping and post-connect goroutines

	pmu     sync.Mutex
	pending map[string]*pending
}

// pending is an IQ the component sent and whose answer it waits for.
type pending struct {
	to jid.JID
	// handle, if set, reads a result's payload (start is its first element,
	// zero if the result is empty). It runs on the stream goroutine, in
	// stream order, so it must be quick and must not block.
	handle func(start xml.StartElement, r xml.TokenReader) error
	done   chan error // buffered; gets exactly one value
	// notices is the number of bound notices read before the answer (set
	// on the stream goroutine before done gets its value).
	notices uint64
}

func newLink(c *Component, sess *xmpp.Session, conn net.Conn, workCtx context.Context) *link {
	l := &link{
		c:       c,
		sess:    sess,
		conn:    conn,
		workCtx: workCtx,
		done:    make(chan struct{}),
		pending: make(map[string]*pending),
	}
	l.mux = mux.New(component.NSAccept,
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: xep0257.NS}, l.handleDirect),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: xep0257.NS}, l.handleDirect),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: NSDelegation, Local: "delegation"}, l.handleDelegation),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: NSDelegation1, Local: "delegation"}, l.handleDelegation),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: NSPlugin}, l.handlePlugin),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: NSPlugin}, l.handlePlugin),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsDiscoInfo, Local: "query"}, l.handleDiscoInfo),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: nsDiscoItems, Local: "query"}, l.handleDiscoItems),
		mux.IQFunc(stanza.GetIQ, xml.Name{Space: ping.NS, Local: "ping"}, l.handlePing),
		mux.IQFunc(stanza.SetIQ, xml.Name{Space: enrollcmd.NSCommands, Local: "command"}, l.handleCommand),
		mux.IQFunc(stanza.ResultIQ, xml.Name{}, l.handleResponse),
		mux.IQFunc(stanza.ErrorIQ, xml.Name{}, l.handleResponse),
		mux.MessageFunc(stanza.NormalMessage, xml.Name{Space: NSDelegation, Local: "delegation"}, l.handleDelegationMessage),
		mux.MessageFunc(stanza.NormalMessage, xml.Name{Space: NSDelegation1, Local: "delegation"}, l.handleDelegationMessage),
		mux.MessageFunc(stanza.NormalMessage, xml.Name{Space: NSPlugin, Local: "notices"}, l.handleNotices),
	)
	return l
}

// start launches the goroutines bound to the link.
func (l *link) start() {
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		l.pingLoop()
	}()
	go func() {
		defer l.wg.Done()
		l.afterConnect()
	}()
}

// end closes the connection and waits for the link's goroutines. Requests
// still being processed find the link gone when they reply.
func (l *link) end() {
	l.endOnce.Do(func() {
		close(l.done)
		_ = l.conn.Close()
	})
	l.wg.Wait()
}

// abort closes the connection because the stream can no longer be trusted
// (a write failed half-way, the server stopped answering); Run reconnects.
func (l *link) abort(why string, err error) {
	select {
	case <-l.done:
		return
	default:
	}
	l.c.log.Warn("closing the connection to the server", "reason", why, "err", err)
	_ = l.conn.Close()
}

// closeStream ends the stream politely on shutdown: </stream:stream>, then
// wait for the server's, each step bounded, then close the connection.
func (l *link) closeStream(served <-chan error) {
	closed := make(chan struct{})
	go func() {
		_ = l.sess.Close()
		close(closed)
	}()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case <-closed:
		t.Reset(closeTimeout)
		select {
		case err := <-served:
			_ = l.conn.Close()
			if err != nil {
				l.c.log.Debug("stream closed", "err", err)
			}
			return
		case <-t.C:
			l.c.log.Warn("the server did not close its stream in time")
		}
	case <-t.C:
		l.c.log.Warn("could not send the end of the stream in time")
	}
	_ = l.conn.Close()
	<-served
}

// write sends one complete stanza from a goroutine other than the stream's.
// The stanza is read and checked first: if r fails or does not make
// well-formed, balanced XML, nothing is written and an error wrapping
// errUnsendable is returned (the stream is intact). A write that fails or
// stalls for RequestTimeout leaves the stream in an unknown state, so the
// connection is closed.
func (l *link) write(r xml.TokenReader) error {
	toks, err := readAll(r)
	if err != nil {
		l.c.log.Error("a stanza could not be built", "err", err)
		return fmt.Errorf("%w: %w", errUnsendable, err)
	}
	if err := checkTokens(toks); err != nil {
		return err
	}
	w := l.sess.TokenWriter() // holds the output lock until Close
	// Every writer holds the output lock, so this deadline applies to this
	// stanza only.
	_ = l.conn.SetWriteDeadline(time.Now().Add(l.c.cfg.RequestTimeout))
	for _, tok := range toks {
		if err = w.EncodeToken(tok); err != nil {
			break
		}
	}
	if err == nil {
		err = w.Flush()
	}
	_ = l.conn.SetWriteDeadline(time.Time{})
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	// Nothing is written once the stream is closed (on shutdown), so the
	// stream is intact and the server's end may still be awaited.
	if err != nil && !errors.Is(err, xmpp.ErrOutputStreamClosed) {
		l.abort("write failed", err)
	}
	return err
}

// readAll reads a stanza the component built, turning a panic of a lazily
// built reader into an error.
func readAll(r xml.TokenReader) (toks []xml.Token, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic while building a stanza: %v\n%s", p, debug.Stack())
		}
	}()
	return xmlstream.ReadAll(r)
}

// dispatch runs work on its own goroutine, bounded by Config.MaxInFlight, with
// a context that ends after Config.RequestTimeout, and sends the stanza it
// returns. If work panics, fallback's stanza is sent instead. It returns
// errBusy or errDraining without running work when it may not start it; the
// caller then answers on the stream goroutine.
func (l *link) dispatch(work func(ctx context.Context) xml.TokenReader, fallback func() xml.TokenReader) error {
	if err := l.c.work.acquire(); err != nil {
		return err
	}
	seq := l.c.inflight.enter() // on the stream goroutine: in stream order
	go func() {
		defer l.c.work.release()
		ctx, cancel := context.WithTimeout(l.workCtx, l.c.cfg.RequestTimeout)
		defer cancel()
		r := l.safely(ctx, work, fallback)
		l.c.inflight.leave(seq)
		l.c.work.worked()
		// Answer on the current link: if the stream was re-established
		// meanwhile and the server still waits for this id (mod_delegation
		// and the plugin's lookups match answers by id), it gets it.
		target := l.c.current()
		if target == nil {
			l.c.log.Warn("dropping a reply: not connected to the server")
			return
		}
		err := target.write(r)
		if errors.Is(err, errUnsendable) {
			l.c.log.Error("a reply could not be built; answering with the fallback", "err", err)
			err = target.write(fallback())
		}
		if err != nil {
			l.c.log.Warn("could not send a reply", "err", err)
		}
	}()
	return nil
}

func (l *link) safely(ctx context.Context, work func(ctx context.Context) xml.TokenReader, fallback func() xml.TokenReader) (r xml.TokenReader) {
	defer func() {
		if p := recover(); p != nil {
			l.c.log.Error("panic while processing a request", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r = fallback()
		}
	}()
	return work(ctx)
}

// request sends an IQ of type typ with payload to to and waits for the
// answer: nil for a result (after handle, if set, has read it), a
// stanza.Error for an error reply, or the context's or the link's error.
// Answers are accepted only from to. It must not be called on the stream
// goroutine.
func (l *link) request(ctx context.Context, to jid.JID, typ stanza.IQType, payload xml.TokenReader, handle func(start xml.StartElement, r xml.TokenReader) error) error {
	id := newID()
	p := &pending{to: to, handle: handle, done: make(chan error, 1)}
	l.pmu.Lock()
	l.pending[id] = p
	l.pmu.Unlock()
	defer func() {
		l.pmu.Lock()
		delete(l.pending, id)
		l.pmu.Unlock()
	}()
	iq := stanza.IQ{ID: id, From: l.c.cfg.JID, To: to, Type: typ}
	// The write runs on its own goroutine so that a stalled connection
	// cannot hold the caller beyond ctx.
	go func() {
		if err := l.write(iq.Wrap(payload)); err != nil {
			p.finish(err)
		}
	}()
	select {
	case err := <-p.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	case <-l.done:
		return errLinkClosed
	}
}

// post sends an IQ like request but returns as soon as it is written, so
// that whatever the caller writes afterwards reaches the server after it:
// the id and pending to wait on (the caller calls unwait(id) when it stops
// waiting), or the write's error (the link is then being closed), or
// errLinkClosed. If ctx ends before the IQ is written, the link's output is
// stuck, so the connection is closed and ctx's error returned.
func (l *link) post(ctx context.Context, to jid.JID, typ stanza.IQType, payload xml.TokenReader, handle func(start xml.StartElement, r xml.TokenReader) error) (string, *pending, error) {
	id := newID()
	p := &pending{to: to, handle: handle, done: make(chan error, 1)}
	l.pmu.Lock()
	l.pending[id] = p
	l.pmu.Unlock()
	iq := stanza.IQ{ID: id, From: l.c.cfg.JID, To: to, Type: typ}
	written := make(chan error, 1)
	go func() { written <- l.write(iq.Wrap(payload)) }()
	var err error
	select {
	case err = <-written:
	case <-ctx.Done():
		err = ctx.Err()
		l.abort("an IQ to the server could not be written in time", err)
	case <-l.done:
		err = errLinkClosed
	}
	if err != nil {
		l.unwait(id)
		return "", nil, err
	}
	return id, p, nil
}

// unwait forgets the pending IQ id: an answer to it is ignored from now on.
func (l *link) unwait(id string) {
	l.pmu.Lock()
	delete(l.pending, id)
	l.pmu.Unlock()
}

func (p *pending) finish(err error) {
	select {
	case p.done <- err:
	default:
	}
}

// handleResponse routes result and error IQs to the request waiting for them.
func (l *link) handleResponse(iq stanza.IQ, t xmlstream.TokenReadEncoder, start *xml.StartElement) error {
	l.pmu.Lock()
	p := l.pending[iq.ID]
	if p != nil && iq.From.Equal(p.to) {
		delete(l.pending, iq.ID)
	} else {
		p = nil
	}
	l.pmu.Unlock()
	if p == nil {
		l.c.log.Debug("ignoring an unexpected response", "id", iq.ID, "from", iq.From.String(), "type", string(iq.Type))
		return nil
	}
	p.notices = l.c.order.read()
	if iq.Type == stanza.ErrorIQ {
		p.finish(readStanzaError(start, t))
		return nil
	}
	var err error
	if p.handle != nil {
		err = p.handle(*start, t)
	}
	p.finish(err)
	return nil
}

// readStanzaError reads the <error/> of an error IQ whose first child is
// start.
func readStanzaError(start *xml.StartElement, r xml.TokenReader) error {
	var se stanza.Error
	var err error
	if start.Name.Local == "error" {
		err = decodeElement(*start, r, &se)
	} else {
		se, err = stanza.UnmarshalError(r)
	}
	if err != nil {
		return fmt.Errorf("component: unreadable error reply: %w", err)
	}
	return se
}

// decodeElement unmarshals into v the element whose start was already read
// from r. (An xml.Decoder over r alone rejects the end element, as it never
// saw the start.)
func decodeElement(start xml.StartElement, r xml.TokenReader, v any) error {
	return xml.NewTokenDecoder(xmlstream.MultiReader(xmlstream.Token(start), r)).Decode(v)
}

// pingLoop pings the server every PingInterval; if it gets no answer within
// RequestTimeout it closes the connection so that Run reconnects.
func (l *link) pingLoop() {
	t := time.NewTicker(l.c.cfg.PingInterval)
	defer t.Stop()
	to := l.c.primary
	for {
		select {
		case <-l.done:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.c.cfg.RequestTimeout)
		err := l.request(ctx, to, stanza.GetIQ, xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: ping.NS, Local: "ping"}}), nil)
		cancel()
		var se stanza.Error
		switch {
		case err == nil, errors.As(err, &se):
			// Any answer, even an error, shows that the link is alive.
		case errors.Is(err, errLinkClosed):
			return
		default:
			l.abort("ping failed", err)
			return
		}
	}
}

// replyFrom is the address the component answers iq from: the address it
// was sent to if that is in the component's domain, else the component JID.
func (c *Component) replyFrom(iq stanza.IQ) jid.JID {
	if iq.To.Domainpart() == c.cfg.JID.Domainpart() {
		return iq.To
	}
	return c.cfg.JID
}

// resultIQ and errorIQ build the answer to iq.
func (c *Component) resultIQ(iq stanza.IQ, payload xml.TokenReader) xml.TokenReader {
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: stanza.ResultIQ}.Wrap(payload)
}

func (c *Component) errorIQ(iq stanza.IQ, se stanza.Error) xml.TokenReader {
	return stanza.IQ{ID: iq.ID, From: c.replyFrom(iq), To: iq.From, Type: stanza.ErrorIQ}.Wrap(se.TokenReader())
}

// send writes a reply on the stream goroutine (inside a handler). Only an I/O
// error is returned, which ends the stream.
func send(t xmlstream.TokenWriter, r xml.TokenReader) error {
	_, err := xmlstream.Copy(t, r)
	return err
}

// stanzaErr builds a stanza error with an English text.
func stanzaErr(typ stanza.ErrorType, cond stanza.Condition, text string) stanza.Error {
	se := stanza.Error{Type: typ, Condition: cond}
	if text != "" {
		se.Text = map[string]string{"": text}
	}
	return se
}

// refusal is the stanza error for a request dispatch would not start.
func refusal(err error) stanza.Error {
	if errors.Is(err, errDraining) {
		return stanzaErr(stanza.Wait, stanza.ResourceConstraint, "saslcert is shutting down; try again shortly")
	}
	return stanzaErr(stanza.Wait, stanza.ResourceConstraint, "saslcert is busy; try again shortly")
}

func newID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "sc-" + hex.EncodeToString(b)
}

// handlePing answers XEP-0199 pings.
func (l *link) handlePing(iq stanza.IQ, t xmlstream.TokenReadEncoder, _ *xml.StartElement) error {
	return send(t, l.c.resultIQ(iq, nil))
}
