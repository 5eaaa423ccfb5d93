package progress_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/saslcert/saslcert/internal/progress"
)

// fakeClock advances by step on every reading.
func fakeClock(step time.Duration) func() time.Time {
	t := time.Date(2026, 12, 5, 9, 0, 0, 0, time.UTC)
	return func() time.Time { t = t.Add(step); return t }
}

func TestTerminalDraws(t *testing.T) {
	var b strings.Builder
	m := progress.NewWith(&b, true, "import", 4, fakeClock(time.Second))
	for range 4 {
		m.Add(1)
	}
	m.Done()
	out := b.String()
	for _, want := range []string{"\r\x1b[Kimport: 1/4 (25%)", "import: 2/4 (50%), 2s left", "import: 4/4 (100%)"} {
		if !strings.Contains(out, want) {
			t.Errorf("output %q lacks %q", out, want)
		}
	}
	if !strings.HasSuffix(out, "\n") {
		t.Errorf("output %q does not end the line", out)
	}
}

func TestRedrawsAtMostEveryInterval(t *testing.T) {
	var b strings.Builder
	m := progress.NewWith(&b, true, "fill", 0, fakeClock(progress.Interval/10))
	for range 100 {
		m.Add(1)
	}
	if n := strings.Count(b.String(), "\r"); n > 11 || n < 1 {
		t.Errorf("%d redraws for 100 adds over 10 intervals", n)
	}
	if !strings.Contains(b.String(), "fill: ") || strings.Contains(b.String(), "%") {
		t.Errorf("unknown total: %q", b.String())
	}
}

func TestQuietWhenNotATerminal(t *testing.T) {
	var b strings.Builder
	m := progress.NewWith(&b, false, "copy", 10, fakeClock(time.Second))
	m.Add(5)
	m.Set(10)
	m.Clear()
	m.Done()
	if b.Len() != 0 {
		t.Errorf("wrote %q", b.String())
	}
	// New decides from the writer: a builder and a regular file are not
	// terminals.
	if progress.New(&b, "x", 1).On() {
		t.Error("a strings.Builder taken for a terminal")
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m = progress.New(f, "x", 1)
	m.Add(1)
	m.Done()
	if m.On() || progress.Terminal(f) {
		t.Error("a regular file taken for a terminal")
	}
	if st, _ := f.Stat(); st.Size() != 0 {
		t.Errorf("wrote %d bytes to a file", st.Size())
	}
	var nilMeter *progress.Meter
	nilMeter.Add(1)
	nilMeter.Done()
}
