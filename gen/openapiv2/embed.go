// Package openapiv2 embeds the OpenAPI (Swagger 2.0) document that
// protoc-gen-openapiv2 generates next to this file (tokenbroker.swagger.json),
// so the broker can serve it at /openapi.json. This file is the only
// hand-written file in gen/; tools/generate.sh keeps it.
package openapiv2

import _ "embed"

// Document is the generated OpenAPI document of the REST facade.
//
//go:embed tokenbroker.swagger.json
var Document []byte
