package callctx

import (
	"context"
	"testing"
)

func TestRequestID(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		ctx  context.Context
		want string
	}{
		{ctx, ""},
		{WithRequestID(ctx, "client-given"), "client-given"},
		{WithGeneratedRequestID(ctx, "0a1b2c3d-", 35), "0a1b2c3d-z"},
		{WithGeneratedRequestID(ctx, "0a1b2c3d-", 36*36), "0a1b2c3d-100"},
	} {
		if got := RequestID(c.ctx); got != c.want {
			t.Errorf("RequestID = %q, want %q", got, c.want)
		}
	}
}
