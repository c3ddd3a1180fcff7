package server

import (
	"net"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tokenbroker/tokenbroker/server/callctx"
)

// inprocOrTLS is the gRPC server's transport security when TLS is on: TLS
// (and mTLS) for connections from the network, and none for the gateway's
// in-memory bufconn connection, which never leaves the process and so
// needs neither encryption nor a client certificate. grpc.Creds applies to
// every listener a grpc.Server serves, so without this the gateway would
// have to present a client certificate to its own server.
type inprocOrTLS struct {
	credentials.TransportCredentials // TLS
}

func (c inprocOrTLS) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	if conn.LocalAddr().Network() == callctx.GatewayNetwork {
		return insecure.NewCredentials().ServerHandshake(conn)
	}
	return c.TransportCredentials.ServerHandshake(conn)
}

func (c inprocOrTLS) Clone() credentials.TransportCredentials {
	return inprocOrTLS{c.TransportCredentials.Clone()}
}
