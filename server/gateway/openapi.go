package gateway

import (
	"encoding/json"
	"sync"

	"github.com/tokenbroker/tokenbroker/gen/openapiv2"
	"github.com/tokenbroker/tokenbroker/server/buildinfo"
)

// OpenAPITitle is the title of the served OpenAPI document.
const OpenAPITitle = "tokenbroker REST API"

var openapiOnce = sync.OnceValue(func() []byte { return openapiDocument(openapiv2.Document, buildinfo.Get().Version) })

// openapiDocument returns the generated document with its info block set
// to the project's title and the running build's version (the generator,
// merging several files, names the first proto file and "version not set").
// On a document it cannot parse it returns the input unchanged.
func openapiDocument(generated []byte, version string) []byte {
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(generated, &doc); err != nil {
		return generated
	}
	info := map[string]any{}
	if raw, ok := doc["info"]; ok {
		_ = json.Unmarshal(raw, &info)
	}
	info["title"] = OpenAPITitle
	info["version"] = version
	info["description"] = "Astra-compatible token management (application tokens, roles, users, Stargate authorization tokens, Pulsar tokens, databases, audit) served by tokenbroker's REST facade."
	info["license"] = map[string]string{"name": "Apache-2.0", "url": "https://www.apache.org/licenses/LICENSE-2.0"}
	rawInfo, err := json.Marshal(info)
	if err != nil {
		return generated
	}
	doc["info"] = rawInfo
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return generated
	}
	return out
}
