package gateway

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// compactJSONPb is runtime.JSONPb with its output compacted. protojson
// deliberately varies its whitespace from build to build (so nobody relies
// on its byte form); REST clients diff, hash and golden-test bodies, so the
// gateway removes every insignificant space and the bytes stay stable.
type compactJSONPb struct {
	*runtime.JSONPb
}

func (m compactJSONPb) Marshal(v any) ([]byte, error) {
	raw, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (m compactJSONPb) NewEncoder(w io.Writer) runtime.Encoder {
	return runtime.EncoderFunc(func(v any) error {
		b, err := m.Marshal(v)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	})
}
