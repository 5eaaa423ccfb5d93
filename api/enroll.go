package api

import (
	"encoding/pem"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/smallstep/pkcs7"

	"github.com/saslcert/saslcert/enroll"
	"github.com/saslcert/saslcert/httperr"
)

// The media types enroll answers in, chosen by Accept.
const (
	// MediaPEMChain is the chain as PEM, leaf first (RFC 8555 §9.1); the
	// answer when Accept is absent or */*.
	MediaPEMChain = "application/pem-certificate-chain"
	// MediaPKCS7 is a certs-only PKCS#7 SignedData (RFC 5751 §3.2.2), DER.
	MediaPKCS7 = "application/pkcs7-mime"
	// MediaJSON is the stored record (as GET .../certs/{fingerprint}) with
	// the chain as PEM in chain_pem.
	MediaJSON = "application/json"
)

// enrollRequest is the body of an enrolment: a PKCS#10 CSR as PEM or
// base64 DER (enroll.ParseCSR), and optionally the name to store the
// certificate under.
type enrollRequest struct {
	CSR              string `json:"csr"`
	Name             string `json:"name"`
	NoCertManagement bool   `json:"no_cert_management"`
}

// enroll: POST /v1/tenants/{tenant}/accounts/{account}/enroll. The CSR is
// checked and issued by enroll.Service (the tenant's issuer and policy)
// for the account of the path, never one the CSR names.
func (a *API) enroll(c *call) (*reply, error) {
	media, err := negotiate(c.r.Header.Values("Accept"))
	if err != nil {
		return nil, err
	}
	var req enrollRequest
	if err := c.decode(&req); err != nil {
		return nil, err
	}
	if a.cfg.Enroll == nil {
		return nil, httperr.New(httperr.Conflict, "certificates are not issued for this tenant")
	}
	if strings.TrimSpace(req.CSR) == "" {
		return nil, httperr.New(httperr.InvalidRequest, "send the certificate request in csr (PEM or base64 DER)")
	}
	csr, err := enroll.ParseCSR(req.CSR)
	if err != nil {
		return nil, err
	}
	got, err := a.cfg.Enroll.Enroll(c.ctx, &enroll.EnrollRequest{Account: c.account, Actor: c.p.Actor(), Name: req.Name,
		CSR: csr, NoCertManagement: req.NoCertManagement})
	if err != nil {
		return nil, err
	}
	var chainPEM []byte
	for _, der := range got.Chain {
		chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	switch media {
	case MediaPKCS7:
		var all []byte
		for _, der := range got.Chain {
			all = append(all, der...)
		}
		p7, err := pkcs7.DegenerateCertificate(all)
		if err != nil {
			return nil, err
		}
		return &reply{status: http.StatusCreated, contentType: MediaPKCS7 + "; smime-type=certs-only", body: p7}, nil
	case MediaJSON:
		v := struct {
			certJSON
			ChainPEM string `json:"chain_pem"`
		}{a.certDetail(got.Record), string(chainPEM)}
		return jsonReply(http.StatusCreated, v)
	}
	return &reply{status: http.StatusCreated, contentType: MediaPEMChain, body: chainPEM}, nil
}

// negotiate picks the answer's media type from Accept (RFC 9110 §12.5.1):
// the acceptable type of highest q, PEM for */* or no Accept. Nothing
// acceptable is 406.
func negotiate(accept []string) (string, error) {
	if len(accept) == 0 {
		return MediaPEMChain, nil
	}
	best, bestQ := "", 0.0
	for _, h := range accept {
		for _, part := range strings.Split(h, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			q := 1.0
			if v, ok := params["q"]; ok {
				if q, err = strconv.ParseFloat(v, 64); err != nil {
					continue
				}
			}
			var m string
			switch mt {
			case MediaPEMChain, "*/*", "application/*":
				m = MediaPEMChain
			case MediaPKCS7, MediaJSON:
				m = mt
			default:
				continue
			}
			if q > bestQ {
				best, bestQ = m, q
			}
		}
	}
	if best == "" {
		return "", &httperr.Error{Code: httperr.InvalidRequest, Status: http.StatusNotAcceptable,
			Description: "enroll answers " + MediaPEMChain + ", " + MediaPKCS7 + " or " + MediaJSON}
	}
	return best, nil
}
