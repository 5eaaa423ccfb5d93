package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/oauth"
	"github.com/saslcert/saslcert/sasl"
)

// call is one authorised request as a handler sees it.
type call struct {
	ctx     context.Context
	r       *http.Request
	pattern string // the route's method and path
	p       oauth.Principal
	tenant  string  // the {tenant} of the path, checked against the token
	account jid.JID // the {account} of the path, checked against the tenant and seat
	body    []byte  // the JSON body of a body route (checked: JSON, size)
}

// reply is a handler's answer; it is what an Idempotency-Key replays.
type reply struct {
	status      int
	contentType string
	body        []byte
	header      http.Header // more headers (an error's challenge), not kept for replays
	replayed    bool
}

// jsonReply encodes v as the answer with status.
func jsonReply(status int, v any) (*reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &reply{status: status, contentType: "application/json", body: append(b, '\n')}, nil
}

func (rp *reply) write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range rp.header {
		h[k] = v
	}
	h.Set("Content-Type", rp.contentType)
	h.Set("Cache-Control", "no-store")
	if rp.replayed {
		h.Set(ReplayedHeader, "true")
	}
	w.WriteHeader(rp.status)
	w.Write(rp.body)
}

// serve runs rt: authenticate, resolve the tenant and account of the path
// (404 for what the token may not see), check the scope, read the body, then
// the handler (through the Idempotency-Key if one is sent).
func (a *API) serve(rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rp, err := a.run(rt, w, r)
		if err != nil {
			rp = a.errorReply(r, err)
		}
		rp.write(w)
	})
}

func (a *API) run(rt route, w http.ResponseWriter, r *http.Request) (*reply, error) {
	c := &call{ctx: r.Context(), r: r, pattern: rt.method + " " + rt.path}
	if rt.public {
		return rt.h(c)
	}
	p, err := a.cfg.Auth.Authenticate(r)
	if err != nil {
		return nil, err
	}
	c.p = p
	if err := a.resolve(c); err != nil {
		return nil, err
	}
	if rt.scope != "" && !p.Has(rt.scope) {
		return nil, &httperr.Error{Code: httperr.InsufficientScope, Challenge: httperr.Bearer, Scope: rt.scope,
			Description: fmt.Sprintf("this request needs the scope %s", rt.scope)}
	}
	if rt.body {
		if r.URL.RawQuery != "" {
			return nil, httperr.New(httperr.InvalidRequest, "this request takes no query parameters")
		}
		if c.body, err = a.readBody(w, r); err != nil {
			return nil, err
		}
	}
	if rt.idempotent {
		if key := r.Header.Get("Idempotency-Key"); key != "" || len(r.Header.Values("Idempotency-Key")) > 0 {
			return a.idempotent(c, rt, key)
		}
	}
	return rt.h(c)
}

// resolve checks the {tenant} and {account} of the path against the token:
// another tenant, a domain not served, an account of another domain or,
// for a seat token, another account are all "not found", in the same words
// whether or not they exist.
func (a *API) resolve(c *call) error {
	t := c.r.PathValue("tenant")
	if t == "" {
		return nil
	}
	if t != c.p.Tenant || !a.served(t) {
		return httperr.New(httperr.NotFound, "no tenant %q", t)
	}
	c.tenant = t
	raw := c.r.PathValue("account")
	if raw == "" {
		return nil
	}
	acc, err := parseAccount(raw)
	if err != nil {
		return err
	}
	if acc.Domainpart() != t || (c.p.Seat != "" && acc.String() != c.p.Seat) {
		return httperr.New(httperr.NotFound, "no account %q in tenant %q", raw, t)
	}
	c.account = acc
	return nil
}

// parseAccount reads an account (a bare JID with a localpart, in the form
// the XMPP server uses: sasl.ParseJID). Errors are invalid_request.
func parseAccount(s string) (jid.JID, error) {
	j, err := sasl.ParseJID(s)
	switch {
	case errors.Is(err, sasl.ErrJIDForms):
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "account %q: %v", s, err)
	case err != nil:
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "account %q is not a JID", s)
	case j.Localpart() == "" || j.Resourcepart() != "":
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "account %q is not a bare JID with a local part (user@domain)", s)
	case j.String() != s:
		return jid.JID{}, httperr.New(httperr.InvalidRequest, "account %q is not in its normal form; use %q", s, j.String())
	}
	return j, nil
}

// readBody reads a JSON request body: Content-Type application/json, at
// most MaxBody bytes. An empty body without a Content-Type is an empty
// object (POSTs that take no parameters).
func (a *API) readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, a.cfg.MaxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, httperr.New(httperr.PayloadTooLarge, "the body is larger than %d bytes", a.cfg.MaxBody)
	case err != nil:
		return nil, httperr.New(httperr.InvalidRequest, "the body could not be read")
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" && len(b) == 0 {
		return nil, nil
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
		return nil, httperr.New(httperr.UnsupportedMedia, "send the body as application/json (got %q)", ct)
	}
	return b, nil
}

// decode reads c's body into v strictly: one JSON object, no unknown
// fields, nothing after it. An empty body is "{}".
func (c *call) decode(v any) error {
	body := bytes.TrimSpace(c.body)
	if len(body) == 0 {
		body = []byte("{}")
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return httperr.New(httperr.InvalidRequest, "the body is not the JSON this request takes: %s", jsonProblem(err, body, v))
	}
	// encoding/json matches field names regardless of case and lets a
	// repeated key win; this API takes each once, exactly as documented.
	if p := fieldProblem(body, v); p != "" {
		return httperr.New(httperr.InvalidRequest, "the body is not the JSON this request takes: %s", p)
	}
	if d.More() {
		return httperr.New(httperr.InvalidRequest, "the body has more than one JSON value")
	}
	if _, err := d.Token(); err != io.EOF {
		return httperr.New(httperr.InvalidRequest, "the body has data after its JSON object")
	}
	return nil
}

// jsonProblem says what is wrong with a body, without echoing it. An
// unknown field is named from v's own fields (encoding/json has no typed
// error for it).
func jsonProblem(err error, body []byte, v any) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at byte %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field != "" {
			return fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type)
		}
		return fmt.Sprintf("want a JSON object, got %s", typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends early"
	}
	if p := fieldProblem(body, v); p != "" {
		return p
	}
	return "not a JSON object"
}

// fieldProblem names the first key of the JSON object body that is not
// exactly the JSON name of a field of the struct *v, or that is given twice
// ("" if none).
func fieldProblem(body []byte, v any) string {
	keys := topKeys(body)
	known := map[string]bool{}
	t := reflect.TypeOf(v).Elem()
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		known[name] = true
	}
	seen := map[string]bool{}
	for _, k := range keys {
		switch {
		case !known[k]:
			return fmt.Sprintf("unknown field %q", k)
		case seen[k]:
			return fmt.Sprintf("field %q is given twice", k)
		}
		seen[k] = true
	}
	return ""
}

// topKeys returns the keys of the JSON object body in order (nil if body
// is not one).
func topKeys(body []byte) []string {
	d := json.NewDecoder(bytes.NewReader(body))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for d.More() {
		t, err := d.Token()
		k, ok := t.(string)
		if err != nil || !ok {
			return keys
		}
		keys = append(keys, k)
		var skip json.RawMessage
		if d.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// queryParams returns c's query parameters, refusing any not in allowed and
// any given twice.
func (c *call) queryParams(allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(c.r.URL.RawQuery)
	if err != nil {
		return nil, httperr.New(httperr.InvalidRequest, "the query string is malformed")
	}
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if !slices.Contains(allowed, k) {
			return nil, httperr.New(httperr.InvalidRequest, "unknown query parameter %q (this request takes: %s)", k, strings.Join(allowed, ", "))
		}
		if len(q[k]) > 1 && k != "state" {
			return nil, httperr.New(httperr.InvalidRequest, "query parameter %q is given more than once", k)
		}
	}
	return q, nil
}
