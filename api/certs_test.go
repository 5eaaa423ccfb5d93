package api_test

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"

	"github.com/smallstep/pkcs7"
	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/internal/catest"
	"github.com/saslcert/saslcert/internal/certtest"
	"github.com/saslcert/saslcert/sasl"
	"github.com/saslcert/saslcert/storage"
)

type certAnswer struct {
	Fingerprint string        `json:"fingerprint"`
	Account     string        `json:"account"`
	Name        string        `json:"name"`
	State       storage.State `json:"state"`
	Source      string        `json:"source"`
	Names       []string      `json:"names"`
	PEM         string        `json:"pem"`
}

type pageAnswer struct {
	Items []certAnswer `json:"items"`
	Next  string       `json:"next_cursor"`
}

type auditAnswer struct {
	Items []struct {
		Actor       string `json:"actor"`
		Action      string `json:"action"`
		Account     string `json:"account"`
		Fingerprint string `json:"fingerprint"`
	} `json:"items"`
	Next string `json:"next_cursor"`
}

// TestCertLifeCycle: upload, list, read, disable, revoke, audit, all as
// api:hr.
func TestCertLifeCycle(t *testing.T) {
	h := newHarness(t)
	c := cert(t, "alice@example.org")
	a := h.do("POST", "/v1/tenants/example.org/accounts/alice@example.org/certs", "hr", uploadBody(t, "laptop", c))
	if a.status != http.StatusCreated {
		t.Fatalf("upload: %d %s", a.status, a.body)
	}
	var got certAnswer
	a.json(t, &got)
	fp := storage.FingerprintOf(c.DER).String()
	if got.Fingerprint != fp || got.Account != "alice@example.org" || got.Name != "laptop" || got.State != storage.StateActive ||
		!slices.Equal(got.Names, []string{"alice@example.org"}) {
		t.Fatalf("upload answer %+v", got)
	}
	var list pageAnswer
	h.do("GET", "/v1/tenants/example.org/accounts/alice@example.org/certs", "reader", "").json(t, &list)
	if len(list.Items) != 1 || list.Items[0].Fingerprint != fp {
		t.Fatalf("account certs: %+v", list)
	}
	var one certAnswer
	h.do("GET", "/v1/tenants/example.org/certs/"+fp, "reader", "").json(t, &one)
	if b, _ := pem.Decode([]byte(one.PEM)); b == nil || string(b.Bytes) != string(c.DER) {
		t.Fatalf("one certificate: %+v", one)
	}
	a = h.do("POST", "/v1/tenants/example.org/certs/"+fp+"/disable", "hr", "")
	a.json(t, &one)
	if a.status != http.StatusOK || one.State != storage.StateDisabled {
		t.Fatalf("disable: %d %s", a.status, a.body)
	}
	a = h.do("POST", "/v1/tenants/example.org/certs/"+fp+"/revoke", "hr", "{}")
	a.json(t, &one)
	if a.status != http.StatusOK || one.State != storage.StateRevoked {
		t.Fatalf("revoke: %d %s", a.status, a.body)
	}
	h.do("POST", "/v1/tenants/example.org/certs/"+fp+"/disable", "hr", "").errorIs(t, http.StatusConflict, "conflict",
		"the certificate is revoked; it cannot be disabled")
	if !slices.Equal(h.revokedList(), []string{fp}) {
		t.Fatalf("sessions closed for %v, want %s", h.revoked, fp)
	}
	var log auditAnswer
	h.do("GET", "/v1/tenants/example.org/audit?account=alice@example.org", "hr", "").json(t, &log)
	var actions []string
	for _, e := range log.Items {
		if e.Actor != "api:hr" || e.Fingerprint != fp {
			t.Fatalf("audit entry %+v", e)
		}
		actions = append(actions, e.Action)
	}
	if !slices.Equal(actions, []string{"add", "disable", "revoke"}) {
		t.Fatalf("audit actions %v", actions)
	}
	// DER in base64 works as PEM does.
	d := cert(t, "alice@example.org")
	body := fmt.Sprintf(`{"name": "phone", "der": %q}`, base64Std(d.DER))
	if a := h.do("POST", "/v1/tenants/example.org/accounts/alice@example.org/certs", "hr", body); a.status != http.StatusCreated {
		t.Fatalf("DER upload: %d %s", a.status, a.body)
	}
}

// TestUploadRefusalsAreXEP0257s: an upload is refused with the words an
// XEP-0257 append gets.
func TestUploadRefusalsAreXEP0257s(t *testing.T) {
	h := newHarness(t)
	bobs := cert(t, "bob@example.org")
	_, refusal := sasl.CheckUpload(bobs.DER, jid.MustParse("alice@example.org"), certtest.Now, sasl.DefaultPolicy())
	detail := refusal.(*sasl.RefusalError).Detail
	path := "/v1/tenants/example.org/accounts/alice@example.org/certs"
	h.do("POST", path, "hr", uploadBody(t, "laptop", bobs)).errorIs(t, http.StatusBadRequest, "invalid_request", detail)

	h.upload("bob@example.org", "laptop", bobs)
	h.do("POST", "/v1/tenants/example.org/accounts/bob@example.org/certs", "hr", uploadBody(t, "again", bobs)).
		errorIs(t, http.StatusConflict, "conflict", "this certificate is already stored")
	h.do("POST", "/v1/tenants/example.org/accounts/bob@example.org/certs", "hr", uploadBody(t, "laptop", cert(t, "bob@example.org"))).
		errorIs(t, http.StatusConflict, "conflict", `a certificate named "laptop" already exists`)
	h.do("POST", "/v1/tenants/example.org/accounts/bob@example.org/certs", "hr", uploadBody(t, " ", cert(t, "bob@example.org"))).
		errorIs(t, http.StatusBadRequest, "invalid_request", "name is blank")
	expired := certtest.New(t, certtest.Options{XMPPAddrs: []string{"bob@example.org"},
		NotBefore: certtest.Now.AddDate(-1, 0, 0), NotAfter: certtest.Now.AddDate(0, 0, -1)})
	_, refusal = sasl.CheckUpload(expired.DER, jid.MustParse("bob@example.org"), certtest.Now, sasl.DefaultPolicy())
	h.do("POST", "/v1/tenants/example.org/accounts/bob@example.org/certs", "hr", uploadBody(t, "old", expired)).
		errorIs(t, http.StatusBadRequest, "invalid_request", refusal.(*sasl.RefusalError).Detail)
}

// TestSearch: filters and cursor pagination over a tenant.
func TestSearch(t *testing.T) {
	h := newHarness(t)
	var want []string
	for i := range 5 {
		acc := fmt.Sprintf("u%d@example.org", i%2)
		want = append(want, h.upload(acc, fmt.Sprintf("c%d", i), cert(t, acc)))
		h.upload(fmt.Sprintf("u%d@example.net", i), "other", cert(t, fmt.Sprintf("u%d@example.net", i)))
	}
	var got []string
	next := ""
	for range 10 {
		var page pageAnswer
		a := h.do("GET", "/v1/tenants/example.org/certs?limit=2&cursor="+next, "reader", "")
		a.json(t, &page)
		for _, c := range page.Items {
			got = append(got, c.Fingerprint)
		}
		if next = page.Next; next == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged search %v, want %v", got, want)
	}
	var page pageAnswer
	h.do("GET", "/v1/tenants/example.org/certs?account=u1@example.org&name=c3&state=active", "reader", "").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Fingerprint != want[3] {
		t.Fatalf("filtered search: %+v", page)
	}
	h.do("GET", "/v1/tenants/example.org/certs?expires_before="+url.QueryEscape(certtest.Now.Format("2006-01-02T15:04:05Z07:00")), "reader", "").json(t, &page)
	if len(page.Items) != 0 {
		t.Fatalf("nothing expires before now: %+v", page)
	}
}

// TestEnroll: a CSR in, the chain out as PEM, PKCS#7 or JSON by Accept.
func TestEnroll(t *testing.T) {
	h := newHarness(t)
	path := "/v1/tenants/example.org/accounts/alice@example.org/enroll"
	csrBody := func(name string) string {
		csr := catest.NewCSR(t, catest.CSROptions{Key: certtest.Key(t, certtest.ECDSAP256)})
		return fmt.Sprintf(`{"csr": %q, "name": %q}`, catest.CSRPEM(csr), name)
	}
	a := h.do("POST", path, "hr", csrBody("pem"))
	if a.status != http.StatusCreated || a.header.Get("Content-Type") != "application/pem-certificate-chain" {
		t.Fatalf("enroll: %d %s %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	b, _ := pem.Decode(a.body)
	leaf, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if _, sans, err := sasl.ParseCertificate(leaf.Raw); err != nil || len(sans.XMPPAddrs) != 1 || sans.XMPPAddrs[0].String() != "alice@example.org" {
		t.Fatalf("issued for %v (%v)", sans, err)
	}
	a = h.do("POST", path, "hr", csrBody("p7"), "Accept", "application/pkcs7-mime")
	if a.status != http.StatusCreated || a.header.Get("Content-Type") != "application/pkcs7-mime; smime-type=certs-only" {
		t.Fatalf("enroll p7: %d %s %s", a.status, a.header.Get("Content-Type"), a.body)
	}
	p7, err := pkcs7.Parse(a.body)
	if err != nil || len(p7.Certificates) < 1 {
		t.Fatalf("PKCS#7: %v, %v", p7, err)
	}
	var rec certAnswer
	a = h.do("POST", path, "hr", csrBody("json"), "Accept", "application/json")
	a.json(t, &rec)
	if a.status != http.StatusCreated || rec.Name != "json" || rec.Source != "enrolled" || rec.Account != "alice@example.org" {
		t.Fatalf("enroll json: %d %s", a.status, a.body)
	}
	h.do("POST", path, "hr", csrBody("x"), "Accept", "text/plain").errorIs(t, http.StatusNotAcceptable, "invalid_request",
		"enroll answers application/pem-certificate-chain, application/pkcs7-mime or application/json")
	h.do("POST", "/v1/tenants/example.net/accounts/bob@example.net/enroll", "crm", csrBody("x")).errorIs(t,
		http.StatusConflict, "conflict", "certificates are not issued for this tenant: example.net")
}

// TestRevokeAll: the leaver's certificates are all revoked in one call, the
// sessions of each closed, audited as api:hr.
func TestRevokeAll(t *testing.T) {
	h := newHarness(t)
	fps := []string{h.upload("leaver@example.org", "laptop", cert(t, "leaver@example.org")),
		h.upload("leaver@example.org", "phone", cert(t, "leaver@example.org"))}
	h.upload("stayer@example.org", "laptop", cert(t, "stayer@example.org"))
	a := h.do("POST", "/v1/tenants/example.org/accounts/leaver@example.org/revoke-all", "hr", "")
	var out struct {
		Account string       `json:"account"`
		Revoked []certAnswer `json:"revoked"`
	}
	a.json(t, &out)
	if a.status != http.StatusOK || len(out.Revoked) != 2 || out.Revoked[0].State != storage.StateRevoked {
		t.Fatalf("revoke-all: %d %s", a.status, a.body)
	}
	if !slices.Equal(h.revokedList(), fps) {
		t.Fatalf("sessions closed for %v, want %v", h.revoked, fps)
	}
	var log auditAnswer
	h.do("GET", "/v1/tenants/example.org/audit?actor=api:hr&account=leaver@example.org", "hr", "").json(t, &log)
	if len(log.Items) != 4 || log.Items[2].Action != "revoke" || log.Items[3].Action != "revoke" {
		t.Fatalf("audit %+v", log)
	}
	var page pageAnswer
	h.do("GET", "/v1/tenants/example.org/certs?state=active", "hr", "").json(t, &page)
	if len(page.Items) != 1 || page.Items[0].Account != "stayer@example.org" {
		t.Fatalf("active after revoke-all: %+v", page)
	}
}

// TestTenants: a token sees its own tenant.
func TestTenants(t *testing.T) {
	h := newHarness(t)
	var out struct {
		Tenants []struct {
			Domain     string `json:"domain"`
			Enrollment *struct {
				Issuer string `json:"issuer"`
			} `json:"enrollment"`
		} `json:"tenants"`
	}
	h.do("GET", "/v1/tenants", "reader", "").json(t, &out)
	if len(out.Tenants) != 1 || out.Tenants[0].Domain != "example.org" || out.Tenants[0].Enrollment == nil {
		t.Fatalf("tenants: %+v", out)
	}
	h.do("GET", "/v1/tenants", "crm", "").json(t, &out)
	if len(out.Tenants) != 1 || out.Tenants[0].Domain != "example.net" || out.Tenants[0].Enrollment != nil {
		t.Fatalf("tenants: %+v", out)
	}
	h.do("GET", "/v1/tenants", "ghost", "").json(t, &out)
	if len(out.Tenants) != 0 {
		t.Fatalf("a token of a domain not served: %+v", out)
	}
}
