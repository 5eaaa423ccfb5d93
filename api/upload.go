package api

import (
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"strings"

	"github.com/saslcert/saslcert/httperr"
	"github.com/saslcert/saslcert/xep0257"
)

// uploadRequest is the body of an upload: the certificate as PEM (one
// CERTIFICATE block) or as the base64 of its DER, exactly one of them.
type uploadRequest struct {
	Name             string `json:"name"`
	PEM              string `json:"pem"`
	DER              string `json:"der"`
	NoCertManagement bool   `json:"no_cert_management"`
}

// upload: POST /v1/tenants/{tenant}/accounts/{account}/certs. The
// certificate goes through the XEP-0257 handler's checks and refusals
// (xep0257.Handler.AppendAs), audited as the token's actor.
func (a *API) upload(c *call) (*reply, error) {
	var req uploadRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	var der []byte
	switch {
	case req.PEM != "" && req.DER != "":
		return nil, httperr.New(httperr.InvalidRequest, "send the certificate once: pem or der, not both")
	case req.PEM != "":
		b, rest := pem.Decode([]byte(strings.TrimSpace(req.PEM)))
		switch {
		case b == nil:
			return nil, httperr.New(httperr.InvalidRequest, "pem is not a PEM block")
		case b.Type != "CERTIFICATE":
			return nil, httperr.New(httperr.InvalidRequest, "pem holds a %q block, not a CERTIFICATE", b.Type)
		case strings.TrimSpace(string(rest)) != "":
			return nil, httperr.New(httperr.InvalidRequest, "pem holds more than one block; send the one certificate")
		}
		der = b.Bytes
	case req.DER != "":
		var err error
		if der, err = base64.StdEncoding.DecodeString(req.DER); err != nil {
			return nil, httperr.New(httperr.InvalidRequest, "der is not standard base64")
		}
	default:
		return nil, httperr.New(httperr.InvalidRequest, "send the certificate as pem or der")
	}
	rec, err := a.cfg.Certs.AppendAs(c.ctx, c.account, c.p.Actor(),
		&xep0257.Append{Name: req.Name, Cert: der, NoCertManagement: req.NoCertManagement})
	if err != nil {
		return nil, err
	}
	return jsonReply(http.StatusCreated, a.certDetail(rec))
}
