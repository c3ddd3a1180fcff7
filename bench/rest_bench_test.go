package bench

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/bench/internal/bare"
)

// BenchmarkRESTHandler calls the broker's REST handler in process, without a
// socket, next to the bare net/http JSON handler bench/load.sh measures over
// loopback (bench/internal/bare): what the REST path costs beyond decoding a
// body and encoding an answer, per request, in time and allocations. Every
// variant builds its request the same way, so the differences are the
// handlers'.
func BenchmarkRESTHandler(b *testing.B) {
	e := start(b)
	app, authToken, resource := e.checkCredentials(b)
	body := `{"action":"db-table-select","resource":"` + resource + `"}`
	broker := e.srv.RESTHandler()

	cases := []struct {
		name    string
		h       http.Handler
		method  string
		path    string
		body    string
		headers map[string]string
		want    string // a substring of a correct answer
	}{
		{"Bare", http.HandlerFunc(bare.CheckJSON), http.MethodPost, "/v1/auth/check", body, nil, `"allowed":true`},
		{"Healthz", broker, http.MethodGet, "/healthz", "", nil, `SERVING`},
		{"CheckXCassandraToken", broker, http.MethodPost, "/v1/auth/check", body,
			map[string]string{"X-Cassandra-Token": authToken}, `"allowed":true`},
		{"CheckBearer", broker, http.MethodPost, "/v1/auth/check", body,
			map[string]string{"Authorization": "Bearer " + app}, `"allowed":true`},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			// What a client sends and net/http's server parses into a request.
			newRequest := func() *http.Request {
				r, _ := http.NewRequest(c.method, "http://broker"+c.path, strings.NewReader(c.body))
				r.RequestURI, r.RemoteAddr = c.path, "127.0.0.1:40000"
				r.Header.Set("User-Agent", "hey/0.0.1")
				r.Header.Set("Accept-Encoding", "gzip")
				if c.body != "" {
					r.Header.Set("Content-Type", "application/json")
				}
				for k, v := range c.headers {
					r.Header.Set(k, v)
				}
				return r
			}
			w := &discardWriter{}
			w.reset()
			c.h.ServeHTTP(w, newRequest())
			if w.code != http.StatusOK || !strings.Contains(w.body.String(), c.want) {
				b.Fatalf("%s %s: %d %s", c.method, c.path, w.code, w.body.String())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				w.reset()
				c.h.ServeHTTP(w, newRequest())
			}
		})
	}
}

// discardWriter is a ResponseWriter that keeps the last answer: a fresh
// header map per request, as net/http gives every request.
type discardWriter struct {
	hdr  http.Header
	code int
	body strings.Builder
}

func (w *discardWriter) reset() {
	w.hdr, w.code = http.Header{}, 0
	w.body.Reset()
}
func (w *discardWriter) Header() http.Header { return w.hdr }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}
func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(p)
}

var _ io.Writer = (*discardWriter)(nil)
