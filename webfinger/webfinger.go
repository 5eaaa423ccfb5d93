// Package webfinger answers RFC 7033 WebFinger queries about the accounts of
// the served XMPP domains: GET /.well-known/webfinger?resource=acct:alice@example.org
// returns a JRD (application/jrd+json) whose links tell a client where to
// manage and get its certificates: the XEP-0257 service, the enrollment
// endpoint, the embedded CA's root and CRL, the OAuth issuer.
//
// The answer depends only on the configuration and the address asked about,
// never on stored data: every address of a served domain gets the same links
// (its own address in subject and in the enrollment URL), whether the account
// exists or not, so WebFinger cannot be used to find accounts. Addresses of
// other domains get 404.
//
// Resources: acct:user@domain (RFC 7565) and xmpp:user@domain (RFC 5122, a
// bare JID: no authority, resource, query or fragment) are served; a missing,
// repeated, overlong or malformed resource gets 400 invalid_request; a
// well-formed URI of another scheme (mailto:, https:, ...) gets 404
// not_found, as RFC 7033 §4.2 asks for resources the server has nothing
// about. docs/OPERATIONS.md lists the link relations.
package webfinger

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"mellium.im/xmpp/jid"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/sasl"
)

// Path is where WebFinger is served (RFC 7033 §10.1).
const Path = "/.well-known/webfinger"

// ContentType is the JRD's media type (RFC 7033 §10.2).
const ContentType = "application/jrd+json"

// The link relations of saslcert's JRD. They are URIs of saslcert's own
// (RFC 7033 §4.4.4.1 allows URIs as relation types); docs/OPERATIONS.md
// describes them.
const (
	// RelXEP0257: href is the xmpp: URI of the component serving XEP-0257
	// (certificates are listed, added, disabled and revoked there).
	RelXEP0257 = "urn:x-saslcert:rel:xep0257"
	// RelEnroll: href is the account's enrollment endpoint on the HTTP API
	// (POST a CSR with an access token).
	RelEnroll = "urn:x-saslcert:rel:enroll"
	// RelCARoot: href is the embedded CA's root certificate (PEM).
	RelCARoot = "urn:x-saslcert:rel:ca-root"
	// RelCRL: href is the embedded CA's CRL (DER).
	RelCRL = "urn:x-saslcert:rel:crl"
	// RelOAuthIssuer: href is the OAuth2 issuer identifier; its metadata
	// is at /.well-known/oauth-authorization-server (RFC 8414).
	RelOAuthIssuer = "urn:x-saslcert:rel:oauth-issuer"
)

// MaxResource bounds the resource parameter (a JID is at most 3071 bytes).
const MaxResource = 3200

// Config is what the answers are made of.
type Config struct {
	// Domains are the served XMPP domains (as given to the component).
	Domains []string
	// Service is the component's JID (the XEP-0257 service).
	Service jid.JID
	// PublicURL is the HTTP listener's public base URL, without a
	// trailing slash: the OAuth issuer, and the base of the other links.
	PublicURL string
	// EnrollPath, if set, is the enrollment path template with {tenant}
	// and {account} (server.EnrollPathTemplate); empty: no enroll link.
	EnrollPath string
	// CARootPath and CRLPath, if set, are the paths of the CA's root (PEM)
	// and CRL on the listener; empty: no such link.
	CARootPath, CRLPath string
}

// Handler serves WebFinger. It implements server.Routes.
type Handler struct {
	cfg     Config
	domains map[string]string // normalised domain -> as configured
}

// New returns the handler for cfg. Domains that are not valid domain JIDs
// are ignored (the component refuses them first).
func New(cfg Config) *Handler {
	h := &Handler{cfg: cfg, domains: map[string]string{}}
	for _, d := range cfg.Domains {
		if j, err := sasl.ParseJID(d); err == nil && j.Localpart() == "" && j.Resourcepart() == "" {
			h.domains[j.Domainpart()] = j.Domainpart()
		}
	}
	return h
}

// Register adds GET Path to mux (server.Routes).
func (h *Handler) Register(mux *http.ServeMux) {
	mux.Handle("GET "+Path, h)
}

// Link is one link of a JRD (RFC 7033 §4.4.4).
type Link struct {
	Rel  string `json:"rel"`
	Type string `json:"type,omitempty"`
	Href string `json:"href,omitempty"`
}

// JRD is the answer (RFC 7033 §4.4).
type JRD struct {
	Subject string   `json:"subject"`
	Aliases []string `json:"aliases,omitempty"`
	Links   []Link   `json:"links"`
}

// ServeHTTP answers one query.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// CORS on every answer, errors included (RFC 7033 §5).
	w.Header().Set("Access-Control-Allow-Origin", "*")
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		httperr.Write(w, httperr.New(httperr.InvalidRequest, "the query string is not valid URL encoding"))
		return
	}
	res := q["resource"]
	switch {
	case len(res) == 0 || res[0] == "":
		httperr.Write(w, httperr.New(httperr.InvalidRequest, "the resource parameter is required, e.g. resource=acct:alice@example.org"))
		return
	case len(res) > 1:
		httperr.Write(w, httperr.New(httperr.InvalidRequest, "give one resource parameter"))
		return
	case len(res[0]) > MaxResource:
		httperr.Write(w, httperr.New(httperr.InvalidRequest, "the resource is longer than %d bytes", MaxResource))
		return
	}
	account, err := ParseResource(res[0])
	if err != nil {
		httperr.Write(w, err)
		return
	}
	if _, ok := h.domains[account.Domainpart()]; !ok {
		httperr.Write(w, httperr.New(httperr.NotFound, "no information about this resource"))
		return
	}
	jrd := h.answer(account, q["rel"])
	w.Header().Set("Content-Type", ContentType)
	w.Header().Set("Cache-Control", "max-age=300")
	_ = json.NewEncoder(w).Encode(jrd)
}

// answer is the JRD for account (a bare JID of a served domain), with the
// links whose relation is in rels (all if rels is empty).
func (h *Handler) answer(account jid.JID, rels []string) JRD {
	bare := account.String()
	c := h.cfg
	links := []Link{{Rel: RelXEP0257, Href: "xmpp:" + uriPart(c.Service.Domainpart())}}
	if c.EnrollPath != "" {
		p := strings.NewReplacer("{tenant}", url.PathEscape(account.Domainpart()), "{account}", url.PathEscape(bare)).Replace(c.EnrollPath)
		links = append(links, Link{Rel: RelEnroll, Href: c.PublicURL + p})
	}
	if c.CARootPath != "" {
		links = append(links, Link{Rel: RelCARoot, Type: "application/x-pem-file", Href: c.PublicURL + c.CARootPath})
	}
	if c.CRLPath != "" {
		links = append(links, Link{Rel: RelCRL, Type: "application/pkix-crl", Href: c.PublicURL + c.CRLPath})
	}
	links = append(links, Link{Rel: RelOAuthIssuer, Href: c.PublicURL})
	if len(rels) > 0 {
		links = slices.DeleteFunc(links, func(l Link) bool { return !slices.Contains(rels, l.Rel) })
	}
	return JRD{Subject: accountURI("acct", account), Aliases: []string{accountURI("xmpp", account)}, Links: links}
}
