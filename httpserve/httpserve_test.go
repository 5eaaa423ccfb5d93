package httpserve

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })

// get sends one keep-alive GET on conn and reads the answer.
func get(conn net.Conn, r *bufio.Reader) error {
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return err
}

// TestIdleKeepAliveClosed: idle keep-alive connections are closed by the
// server after IdleTimeout (before the fix the CRL listener kept 200 of 200
// open after 30 s).
func TestIdleKeepAliveClosed(t *testing.T) {
	l := DefaultLimits()
	l.IdleTimeout = 200 * time.Millisecond
	s, err := Start(listen(t), hello, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	const n = 20
	var conns []net.Conn
	var readers []*bufio.Reader
	for i := 0; i < n; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		r := bufio.NewReader(c)
		if err := get(c, r); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		conns, readers = append(conns, c), append(readers, r)
	}
	// One generous bound for all: the server must close them itself.
	deadline := time.Now().Add(30 * time.Second)
	for i, c := range conns {
		_ = c.SetReadDeadline(deadline)
		if _, err := readers[i].ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("idle conn %d: read gave %v, want EOF (closed by the server)", i, err)
		}
	}
}

// TestConnectionCap: with MaxConns open connections, another one is not
// served until one of them closes.
func TestConnectionCap(t *testing.T) {
	l := DefaultLimits()
	l.MaxConns = 3
	l.IdleTimeout = time.Minute
	s, err := Start(listen(t), hello, l, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop(time.Second)
	var held []net.Conn
	for i := 0; i < l.MaxConns; i++ {
		c, err := net.Dial("tcp", s.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := get(c, bufio.NewReader(c)); err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		held = append(held, c)
	}
	extra, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	got := make(chan error, 1)
	go func() { got <- get(extra, bufio.NewReader(extra)) }()
	select {
	case err := <-got:
		t.Fatalf("a connection beyond the cap of %d was served (err %v)", l.MaxConns, err)
	case <-time.After(500 * time.Millisecond):
	}
	held[0].Close()
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("the waiting connection after one closed: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting connection was not served after one closed")
	}
}

func TestLimitsCheck(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Limits)
	}{
		{"zero idle timeout", func(l *Limits) { l.IdleTimeout = 0 }},
		{"zero read header timeout", func(l *Limits) { l.ReadHeaderTimeout = 0 }},
		{"no connection cap", func(l *Limits) { l.MaxConns = 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := DefaultLimits()
			tc.edit(&l)
			if _, err := Start(listen(t), hello, l, nil); !errors.Is(err, ErrLimits) {
				t.Fatalf("got %v, want ErrLimits", err)
			}
		})
	}
}
