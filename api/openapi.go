package api

import (
	"net/http"

	"github.com/saslcert/saslcert/docs"
)

// openAPI: GET /v1/openapi.json, the OpenAPI 3.1 description of the API
// (docs/openapi.json). It needs no token.
func (a *API) openAPI(c *call) (*reply, error) {
	return &reply{status: http.StatusOK, contentType: "application/json", body: docs.OpenAPI}, nil
}
