package stepca

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"

	"github.com/saslcert/saslcert/enroll"
)

// maxCRL bounds the size of a CRL read from step-ca.
const maxCRL = 16 << 20

// CRL returns step-ca's current CRL (DER) from GET /1.0/crl, over TLS
// pinned to the configured root. step-ca must have its CRL enabled
// ("crl": {"enabled": true}); with generateOnRevoke the CRL lists a
// revocation as soon as it is made. The caller verifies the CRL's signature
// (enroll.CRLChecker does). Errors wrap enroll.ErrRejected (4xx) or
// enroll.ErrUnavailable.
func (c *Client) CRL(ctx context.Context) ([]byte, error) {
	hc, _, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, c.endpoint("/1.0/crl"), nil)
	if err != nil {
		return nil, fmt.Errorf("stepca: %w", err)
	}
	resp, err := hc.Do(r)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, enroll.Errorf(enroll.ErrUnavailable, "GET /1.0/crl: %v", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCRL))
	if err != nil {
		return nil, enroll.Errorf(enroll.ErrUnavailable, "GET /1.0/crl: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		kind := enroll.ErrRejected
		if resp.StatusCode >= 500 {
			kind = enroll.ErrUnavailable
		}
		return nil, enroll.Errorf(kind, "GET /1.0/crl: %s", resp.Status)
	}
	if b, _ := pem.Decode(data); b != nil && b.Type == "X509 CRL" {
		data = b.Bytes
	}
	return data, nil
}
