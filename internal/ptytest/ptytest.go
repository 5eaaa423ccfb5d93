//go:build linux

// Package ptytest opens pseudo-terminals for tests of what commands show on
// a terminal (internal/progress) and not elsewhere.
package ptytest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Open opens a pseudo-terminal pair: what is written to tty is read from
// ptm. Both are closed at the end of the test. It skips the test where
// /dev/ptmx cannot be opened.
func Open(tb testing.TB) (ptm, tty *os.File) {
	tb.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		tb.Skipf("no pseudo-terminals here: %v", err)
	}
	tb.Cleanup(func() { ptm.Close() })
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		tb.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		tb.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tty.Close() })
	return ptm, tty
}

// ReadUntil reads from ptm until what was read contains want, and returns
// it; it fails tb after 10 seconds or on a read error.
func ReadUntil(tb testing.TB, ptm *os.File, want string) string {
	tb.Helper()
	if err := ptm.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		tb.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 4096)
	for !strings.Contains(string(got), want) {
		n, err := ptm.Read(buf)
		if err != nil {
			tb.Fatalf("terminal got %q, then %v; want %q", got, err, want)
		}
		got = append(got, buf[:n]...)
	}
	return string(got)
}
