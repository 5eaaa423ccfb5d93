// Package progress shows how far a long command has got (an import, a
// store copy, a bulk fill) on standard error when that is a terminal, and
// nothing at all otherwise: scripts, logs, pipes and tests see only the
// command's own output.
//
// A Meter redraws one line ("label: 1200/5000 (24%), 2m10s left") in place
// with a carriage return, at most every Interval, and ends it with Done.
// Reports go to the writer given; the decision to draw is made once, from
// that writer (Terminal), or by the caller (NewWith).
package progress

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/term"
)

// Interval is the shortest time between two redraws.
const Interval = 200 * time.Millisecond

// Terminal reports whether w is a terminal (an *os.File on a tty).
func Terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Meter counts work done out of a total (0: unknown) and draws it.
// Its methods are safe for concurrent use; a nil *Meter does nothing.
type Meter struct {
	mu    sync.Mutex
	w     io.Writer
	on    bool
	label string
	total int64
	done  int64
	start time.Time
	last  time.Time
	drawn bool
	now   func() time.Time
}

// New returns a Meter that draws on w if w is a terminal.
func New(w io.Writer, label string, total int64) *Meter {
	return NewWith(w, Terminal(w), label, total, time.Now)
}

// NewWith returns a Meter that draws on w if on, reading the time from now
// (tests).
func NewWith(w io.Writer, on bool, label string, total int64, now func() time.Time) *Meter {
	t := now()
	return &Meter{w: w, on: on, label: label, total: total, start: t, now: now}
}

// On reports whether m draws anything.
func (m *Meter) On() bool { return m != nil && m.on }

// SetTotal changes the total (when it is learnt late).
func (m *Meter) SetTotal(total int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	m.total = total
	m.mu.Unlock()
}

// Add counts n more units done and redraws if Interval has passed.
func (m *Meter) Add(n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done += n
	if !m.on {
		return
	}
	if t := m.now(); !m.drawn || t.Sub(m.last) >= Interval {
		m.last = t
		m.draw(t)
	}
}

// Set sets the units done to n (for callers that report a running count).
func (m *Meter) Set(n int64) {
	if m == nil {
		return
	}
	m.mu.Lock()
	d := n - m.done
	m.mu.Unlock()
	m.Add(d)
}

// Done draws the final count and ends the line. Nothing is written if m
// does not draw.
func (m *Meter) Done() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.on {
		return
	}
	m.draw(m.now())
	fmt.Fprint(m.w, "\n")
	m.on = false
}

// Clear erases the line (before the caller prints something else); the
// next Add draws it again.
func (m *Meter) Clear() {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.on && m.drawn {
		fmt.Fprint(m.w, "\r\x1b[K")
		m.drawn = false
	}
}

// draw writes the line; m.mu is held.
func (m *Meter) draw(t time.Time) {
	line := fmt.Sprintf("%s: %d", m.label, m.done)
	if m.total > 0 {
		line += fmt.Sprintf("/%d (%d%%)", m.total, m.done*100/m.total)
		if el := t.Sub(m.start); m.done > 0 && m.done < m.total && el > time.Second {
			left := time.Duration(float64(el) * float64(m.total-m.done) / float64(m.done))
			line += fmt.Sprintf(", %s left", left.Round(time.Second))
		}
	}
	fmt.Fprintf(m.w, "\r\x1b[K%s", line)
	m.drawn = true
}
