package gateway

import (
	"io"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
)

// compactJSONPb is runtime.JSONPb with its output compacted. protojson
// deliberately varies its whitespace from build to build (so nobody relies
// on its byte form); REST clients diff, hash and golden-test bodies, so the
// gateway removes every insignificant space and the bytes stay stable.
type compactJSONPb struct {
	*runtime.JSONPb
}

func (m compactJSONPb) Marshal(v any) ([]byte, error) {
	if p, ok := v.(proto.Message); ok {
		// What JSONPb.Marshal does for a message, without its copy into a
		// bytes.Buffer; compacted in place.
		raw, err := m.MarshalOptions.Marshal(p)
		if err != nil {
			return nil, err
		}
		return compactJSON(raw), nil
	}
	raw, err := m.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	return compactJSON(raw), nil
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

// compactJSON removes the insignificant whitespace of valid JSON, in place:
// the bytes json.Compact would give, without its scanner (which costs a
// state-machine step per byte) or a second buffer. Whitespace inside a string
// is kept; a string ends at a quote not escaped by a backslash. The input is
// always an encoder's output (protojson, encoding/json), so it is valid.
func compactJSON(b []byte) []byte {
	out := b[:0]
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			continue
		}
		out = append(out, c)
	}
	return out
}
