package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"net/url"
	"slices"
	"strings"

	"github.com/saslcert/saslcert/httperr"
)

// A cursor is opaque to clients: base64url of the last ID of the page (8
// bytes), the first 16 bytes of the SHA-256 of the search it belongs to, and
// an HMAC-SHA256 (16 bytes) of both under Config.CursorKey. A changed cursor
// fails the HMAC; a cursor of another search (other filters, tenant or
// route) fails the search hash. Both are invalid_request, so a client cannot
// walk from one search or tenant into another.
const (
	cursorSearch = 16
	cursorMAC    = 16
	cursorLen    = 8 + cursorSearch + cursorMAC
)

// The cursor refusals.
const (
	textCursorInvalid = "the cursor is not valid (it was changed, or made by another server); repeat the search without a cursor"
	textCursorOther   = "the cursor belongs to another search; send the same filters as the request that returned it"
)

// searchID identifies a search: the route, the tenant and the filters
// (every query parameter but cursor and limit, in a fixed order).
func searchID(path, tenant string, q url.Values) [sha256.Size]byte {
	var b strings.Builder
	b.WriteString(path + "\x00" + tenant)
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if k != "cursor" && k != "limit" && !yield(k) {
				return
			}
		}
	}) {
		for _, v := range q[k] {
			b.WriteString("\x00" + k + "=" + v)
		}
	}
	return sha256.Sum256([]byte(b.String()))
}

func (a *API) cursorMAC(msg []byte) []byte {
	m := hmac.New(sha256.New, a.cfg.CursorKey)
	m.Write(msg)
	return m.Sum(nil)[:cursorMAC]
}

// makeCursor returns the cursor of the page that ends at lastID.
func (a *API) makeCursor(lastID int64, search [sha256.Size]byte) string {
	msg := binary.BigEndian.AppendUint64(nil, uint64(lastID))
	msg = append(msg, search[:cursorSearch]...)
	return base64.RawURLEncoding.EncodeToString(append(msg, a.cursorMAC(msg)...))
}

// readCursor returns the ID a cursor continues after (0 for no cursor).
func (a *API) readCursor(s string, search [sha256.Size]byte) (int64, error) {
	if s == "" {
		return 0, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != cursorLen {
		return 0, httperr.New(httperr.InvalidRequest, textCursorInvalid)
	}
	msg, mac := b[:8+cursorSearch], b[8+cursorSearch:]
	if !hmac.Equal(mac, a.cursorMAC(msg)) {
		return 0, httperr.New(httperr.InvalidRequest, textCursorInvalid)
	}
	if !hmac.Equal(msg[8:], search[:cursorSearch]) {
		return 0, httperr.New(httperr.InvalidRequest, textCursorOther)
	}
	id := int64(binary.BigEndian.Uint64(msg[:8]))
	if id < 0 {
		return 0, httperr.New(httperr.InvalidRequest, textCursorInvalid)
	}
	return id, nil
}
