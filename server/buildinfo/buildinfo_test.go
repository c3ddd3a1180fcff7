package buildinfo

import (
	"runtime"
	"strings"
	"testing"
)

func TestLinkTimeValuesWin(t *testing.T) {
	in := read("v9.8.7", "0123456789abcdef0123")
	if in.Version != "v9.8.7" || in.Commit != "0123456789abcdef0123" || in.GoVersion != runtime.Version() {
		t.Fatalf("read = %+v", in)
	}
	if s := in.String(); !strings.HasPrefix(s, "v9.8.7 (commit 0123456789ab") {
		t.Fatalf("String = %q", s)
	}
}

func TestFallbackVersion(t *testing.T) {
	if in := read("", ""); in.Version == "" || in.GoVersion == "" {
		t.Fatalf("read = %+v: want a non-empty version and Go version", in)
	}
	if Get() != Get() {
		t.Fatal("Get is not stable")
	}
}
