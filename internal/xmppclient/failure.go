package xmppclient

import (
	"bytes"
	"encoding/xml"
	"io"
	"sync"
)

const nsSASL = "urn:ietf:params:xml:ns:xmpp-sasl"

// AuthError is a SASL <failure/> the server sent during negotiation. mellium
// reports only its text; this keeps the condition too.
type AuthError struct {
	Condition string // e.g. "not-authorized", "temporary-auth-failure"
	Text      string
	Err       error // what mellium returned
}

func (e *AuthError) Error() string {
	if e.Text != "" {
		return "SASL failure: " + e.Condition + " (" + e.Text + ")"
	}
	return "SASL failure: " + e.Condition
}

func (e *AuthError) Unwrap() error { return e.Err }

// parseFailure finds the last SASL <failure/> in the incoming stream bytes.
func parseFailure(in []byte) *AuthError {
	i := bytes.LastIndex(in, []byte("<failure"))
	if i < 0 {
		return nil
	}
	d := xml.NewDecoder(bytes.NewReader(in[i:]))
	var f struct {
		XMLName xml.Name
		Inner   []struct {
			XMLName xml.Name
			Text    string `xml:",chardata"`
		} `xml:",any"`
	}
	if err := d.Decode(&f); err != nil && err != io.EOF {
		return nil
	}
	if f.XMLName.Local != "failure" || (f.XMLName.Space != "" && f.XMLName.Space != nsSASL) {
		return nil
	}
	e := &AuthError{Condition: "not-authorized"}
	for _, c := range f.Inner {
		if c.XMLName.Local == "text" {
			e.Text = c.Text
		} else {
			e.Condition = c.XMLName.Local
		}
	}
	return e
}

// tailBuffer keeps the last max bytes written to it until stop is called.
type tailBuffer struct {
	mu      sync.Mutex
	buf     []byte
	max     int
	stopped bool
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stopped {
		return len(p), nil
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) stop() {
	t.mu.Lock()
	t.stopped = true
	t.mu.Unlock()
}

func (t *tailBuffer) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
