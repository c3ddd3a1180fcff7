package bolt

import "google.golang.org/protobuf/proto"

// encodeProto builds stored protobuf records by hand in tests.
func encodeProto(m proto.Message) ([]byte, error) { return proto.Marshal(m) }
