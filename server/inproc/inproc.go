// Package inproc is an in-process gRPC channel: a grpc.ClientConnInterface
// that calls registered service implementations directly, through the same
// unary interceptor chain the network server runs, with no connection, no
// HTTP/2 framing and no serialization. The REST gateway uses it, so a REST
// call is authenticated, authorized, audited, counted and recovered from
// exactly like a gRPC call, for the cost of a function call.
//
// What an interceptor reads from the transport arrives as over a network
// connection: the caller's outgoing metadata as incoming metadata (keys
// lower-cased), a peer whose address has network Network, the method name
// (grpc.Method), and response headers and trailers set with grpc.SetHeader,
// grpc.SendHeader and grpc.SetTrailer, delivered to grpc.Header and
// grpc.Trailer call options. Request and response are copied (proto.Merge),
// so neither side can observe the other's later changes.
//
// Streaming methods are not served (the gateway maps none); NewStream
// answers Unimplemented.
package inproc

import (
	"context"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// Network is the network name of the channel's peer address: servers tell
// in-process calls from network ones by it.
const Network = "inproc"

type addr struct{}

func (addr) Network() string { return Network }
func (addr) String() string  { return "inproc" }

// authInfo says the call crossed no network: no transport security, like an
// insecure connection.
type authInfo struct{ credentials.CommonAuthInfo }

func (authInfo) AuthType() string { return "inproc" }

var inprocPeer = &peer.Peer{
	Addr:     addr{},
	AuthInfo: authInfo{credentials.CommonAuthInfo{SecurityLevel: credentials.NoSecurity}},
}

// Channel dispatches calls to the services registered on it. Register every
// service before the first call; registration is not synchronized with calls.
type Channel struct {
	unary   grpc.UnaryServerInterceptor // nil: none
	methods map[string]method           // by full method name, "/pkg.Service/Method"
}

type method struct {
	impl any
	desc *grpc.MethodDesc
}

// New returns a channel whose calls run through unary (which may be nil):
// pass the same chain the grpc.Server runs (see Chain).
func New(unary grpc.UnaryServerInterceptor) *Channel {
	return &Channel{unary: unary, methods: map[string]method{}}
}

// RegisterService implements grpc.ServiceRegistrar.
func (c *Channel) RegisterService(sd *grpc.ServiceDesc, impl any) {
	for i := range sd.Methods {
		c.methods["/"+sd.ServiceName+"/"+sd.Methods[i].MethodName] = method{impl: impl, desc: &sd.Methods[i]}
	}
}

// Invoke implements grpc.ClientConnInterface.
func (c *Channel) Invoke(ctx context.Context, fullMethod string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := c.methods[fullMethod]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", fullMethod)
	}
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "request of %s is not a protobuf message", fullMethod)
	}
	out, ok := reply.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "response of %s is not a protobuf message", fullMethod)
	}

	sts := &transportStream{method: fullMethod}
	sctx := serverContext(ctx)
	sctx = grpc.NewContextWithServerTransportStream(sctx, sts)
	dec := func(v any) error {
		if err := copyMessage(v.(proto.Message), in); err != nil {
			return status.Errorf(codes.Internal, "decode request of %s: %v", fullMethod, err)
		}
		return nil
	}
	resp, err := m.desc.Handler(m.impl, sctx, dec, c.unary)
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = sts.header()
		case grpc.TrailerCallOption:
			*o.TrailerAddr = sts.trailer()
		case grpc.PeerCallOption:
			*o.PeerAddr = *inprocPeer
		}
	}
	if err != nil {
		return wireError(ctx, err)
	}
	msg, ok := resp.(proto.Message)
	if !ok || msg == nil {
		return status.Errorf(codes.Internal, "handler of %s returned no response message", fullMethod)
	}
	if err := copyMessage(out, msg); err != nil {
		return status.Errorf(codes.Internal, "decode response of %s: %v", fullMethod, err)
	}
	return nil
}

// copyMessage copies src into the empty dst: by proto.Merge when both are
// the same type (the gateway's case), else through the wire encoding, as a
// network hop would.
func copyMessage(dst, src proto.Message) error {
	if dst.ProtoReflect().Descriptor() == src.ProtoReflect().Descriptor() {
		proto.Merge(dst, src)
		return nil
	}
	b, err := proto.Marshal(src)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, dst)
}

// NewStream implements grpc.ClientConnInterface; streaming is not served.
func (c *Channel) NewStream(context.Context, *grpc.StreamDesc, string, ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Error(codes.Unimplemented, "streaming methods are not served in process")
}

// wireError returns err as a client would see it after a network hop: a
// status error, context errors as their codes, anything else as Unknown.
func wireError(ctx context.Context, err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	return status.Error(codes.Unknown, err.Error())
}

// serverContext is the context the handler runs with: the caller's
// deadline and cancellation, but none of its values (as across a
// connection), its outgoing metadata as incoming, and the in-process peer.
func serverContext(ctx context.Context) context.Context {
	sctx := context.Context(valuesOff{ctx})
	if md, ok := metadata.FromOutgoingContext(ctx); ok {
		// FromOutgoingContext returns a fresh, lower-cased copy.
		sctx = metadata.NewIncomingContext(sctx, md)
	}
	return peer.NewContext(sctx, inprocPeer)
}

// valuesOff passes deadline and cancellation through but hides values.
type valuesOff struct{ parent context.Context }

func (v valuesOff) Deadline() (time.Time, bool) { return v.parent.Deadline() }
func (v valuesOff) Done() <-chan struct{}       { return v.parent.Done() }
func (v valuesOff) Err() error                  { return v.parent.Err() }
func (valuesOff) Value(any) any                 { return nil }

// transportStream collects what the handler sets with grpc.SetHeader,
// grpc.SendHeader and grpc.SetTrailer.
type transportStream struct {
	method string
	mu     sync.Mutex
	hdr    metadata.MD
	trl    metadata.MD
}

func (s *transportStream) Method() string { return s.method }

func (s *transportStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hdr = metadata.Join(s.hdr, md)
	return nil
}

func (s *transportStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *transportStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trl = metadata.Join(s.trl, md)
	return nil
}

func (s *transportStream) header() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hdr == nil {
		return metadata.MD{}
	}
	return s.hdr
}

func (s *transportStream) trailer() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.trl == nil {
		return metadata.MD{}
	}
	return s.trl
}

// Chain composes interceptors as grpc.ChainUnaryInterceptor does: the
// first is outermost. nil for none.
func Chain(interceptors ...grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	switch len(interceptors) {
	case 0:
		return nil
	case 1:
		return interceptors[0]
	}
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return interceptors[0](ctx, req, info, chained(interceptors[1:], info, handler))
	}
}

func chained(rest []grpc.UnaryServerInterceptor, info *grpc.UnaryServerInfo, final grpc.UnaryHandler) grpc.UnaryHandler {
	if len(rest) == 0 {
		return final
	}
	return func(ctx context.Context, req any) (any, error) {
		return rest[0](ctx, req, info, chained(rest[1:], info, final))
	}
}

// Registrars registers every service on each of its registrars (the
// network server and the in-process channel).
type Registrars []grpc.ServiceRegistrar

// RegisterService implements grpc.ServiceRegistrar.
func (r Registrars) RegisterService(sd *grpc.ServiceDesc, impl any) {
	for _, reg := range r {
		reg.RegisterService(sd, impl)
	}
}

// Methods lists the full names of the unary methods the channel serves.
func (c *Channel) Methods() []string {
	out := make([]string, 0, len(c.methods))
	for m := range c.methods {
		out = append(out, m)
	}
	return out
}

var _ grpc.ClientConnInterface = (*Channel)(nil)
