// Package docs embeds the documents the running service serves: the
// OpenAPI description of the /v1 API (openapi.json, served at
// GET /v1/openapi.json).
package docs

import _ "embed"

// OpenAPI is docs/openapi.json.
//
//go:embed openapi.json
var OpenAPI []byte
