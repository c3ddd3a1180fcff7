// Command etcd is the etcd server, built from a pinned module version
// (go.mod here), for running the broker's etcd backend locally and in
// smoke tests: go build -o tools/bin/etcd ./tools/etcd (from tools/etcd).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
