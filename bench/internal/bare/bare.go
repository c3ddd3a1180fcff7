// Package bare is the cheapest possible REST Check: a net/http handler that
// decodes the JSON body and encodes a fixed answer, with nothing behind it.
// bench/baseline serves it over loopback for bench/load.sh, and the handler
// benchmarks of bench/ call it in process, so both measure the broker's REST
// path against the same baseline.
package bare

import (
	"encoding/json"
	"net/http"
)

// CheckJSON answers POST /v1/auth/check: decode the request body, encode a
// fixed answer.
func CheckJSON(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Credential string `json:"credential"`
		Action     string `json:"action"`
		Resource   string `json:"resource"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"description":"bad body"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"allowed": true, "reason": "", "principal": map[string]any{"kind": "application_token", "id": "baseline"}})
}
