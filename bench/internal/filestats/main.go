// Command filestats says where the bytes of a stopped broker's bbolt file
// go: per bucket, its keys and the pages it holds, and from those the
// bytes one application token costs with its index entries and its audit
// event, the figure bench/scale.sh reports beside the whole file's.
//
//	go run ./bench/internal/filestats DIR/tokenbroker.db          # a table per bucket
//	go run ./bench/internal/filestats -per-token DIR/tokenbroker.db  # one number
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"text/tabwriter"

	"go.etcd.io/bbolt"
)

// tokenBuckets hold an application token and its index entries (a token
// with an expiry also has one in tokens_by_expiry).
var tokenBuckets = []string{"tokens", "tokens_by_role", "tokens_by_expiry"}

func main() {
	perToken := flag.Bool("per-token", false, "print only the bytes per application token with its index entries and one audit event")
	flag.Parse()
	if flag.NArg() != 1 {
		log.Fatal("usage: filestats [-per-token] FILE")
	}
	path := flag.Arg(0)
	// Read-only: bbolt takes a shared lock, so the broker must be stopped
	// (a running one holds the exclusive lock and this waits for it).
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	stats := map[string]bbolt.BucketStats{}
	var names []string
	err = db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			names = append(names, string(name))
			stats[string(name)] = b.Stats()
			return nil
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	alloc := func(name string) int { s := stats[name]; return s.BranchAlloc + s.LeafAlloc }

	tokens := stats["tokens"].KeyN
	audit := stats["audit"].KeyN
	var tokenBytes int
	for _, name := range tokenBuckets {
		tokenBytes += alloc(name)
	}
	var per float64
	if tokens > 0 && audit > 0 {
		per = float64(tokenBytes)/float64(tokens) + float64(alloc("audit"))/float64(audit)
	}
	if *perToken {
		fmt.Printf("%.0f\n", per)
		return
	}

	fi, err := os.Stat(path)
	if err != nil {
		log.Fatal(err)
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "bucket\tkeys\tbytes (pages)\tbytes per key\tleaf fill\t")
	var inBuckets int
	for _, name := range names {
		s := stats[name]
		inBuckets += alloc(name)
		if s.KeyN == 0 {
			continue
		}
		fill := 0.0
		if s.LeafAlloc > 0 {
			fill = float64(s.LeafInuse) / float64(s.LeafAlloc)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%.0f\t%.0f%%\t\n", name, s.KeyN, alloc(name), float64(alloc(name))/float64(s.KeyN), 100*fill)
	}
	fmt.Fprintf(w, "all buckets\t\t%d\t\t\t\n", inBuckets)
	fmt.Fprintf(w, "file\t\t%d\t\t\t\n", fi.Size())
	w.Flush()
	fmt.Printf("bytes per application token with its index entries and one audit event: %.0f\n", per)
}
