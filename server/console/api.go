package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// apiError is a refused or failed REST call, carrying the API's own
// message so the page can show it.
type apiError struct {
	Status  int
	Message string
}

func (e *apiError) Error() string { return e.Message }

// recorder captures the REST facade's answer to an in-process call.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}

// call sends one request through the REST facade's own http.Handler, with
// the session's credential as the bearer: the same authentication,
// authorization table, audit and throttling as any other REST client. The
// original request's client address and request ID are kept, so per-address
// throttling and log correlation see the browser, not the console.
func (c *Console) call(orig *http.Request, credential, method, path string, body, out any) error {
	return c.callHeaders(orig, credential, method, path, body, out, nil)
}

func (c *Console) callHeaders(orig *http.Request, credential, method, path string, body, out any, hdr map[string]string) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return &apiError{Status: http.StatusBadRequest, Message: err.Error()}
		}
		rd = bytes.NewReader(b)
	}
	ctx := context.Background()
	if orig != nil {
		ctx = orig.Context()
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return &apiError{Status: http.StatusBadRequest, Message: err.Error()}
	}
	if orig != nil {
		req.RemoteAddr = orig.RemoteAddr
		req.Host = orig.Host
		req.TLS = orig.TLS
		if id := orig.Header.Get("X-Request-Id"); id != "" {
			req.Header.Set("X-Request-Id", id)
		}
	}
	req.Header.Set("Accept", "application/json")
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if credential != "" {
		req.Header.Set("Authorization", "Bearer "+credential)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := &recorder{header: http.Header{}}
	c.api.ServeHTTP(rec, req)
	if rec.code == 0 {
		rec.code = http.StatusOK
	}
	if rec.code < 200 || rec.code > 299 {
		return &apiError{Status: rec.code, Message: errorMessage(rec.code, rec.body.Bytes())}
	}
	if out != nil && rec.body.Len() > 0 {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return &apiError{Status: http.StatusBadGateway, Message: fmt.Sprintf("unexpected answer from %s %s: %v", method, path, err)}
		}
	}
	return nil
}

// errorMessage extracts the message from any of the API's three error
// bodies (DevOps {"errors":[...]}, Stargate {"description"}, Pulsar
// {"reason"}).
func errorMessage(code int, body []byte) string {
	var e struct {
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
		Description string `json:"description"`
		Reason      string `json:"reason"`
	}
	if json.Unmarshal(body, &e) == nil {
		var msgs []string
		for _, m := range e.Errors {
			msgs = append(msgs, m.Message)
		}
		switch {
		case len(msgs) > 0:
			return strings.Join(msgs, "; ")
		case e.Description != "":
			return e.Description
		case e.Reason != "":
			return e.Reason
		}
	}
	return fmt.Sprintf("%d %s", code, http.StatusText(code))
}

// status returns the HTTP status of a call error (0 for nil).
func status(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := err.(*apiError); ok {
		return e.Status
	}
	return http.StatusInternalServerError
}
