package bolt

import (
	"os"

	"golang.org/x/sys/unix"
)

// readAhead asks the kernel to read the whole file at path into the page
// cache (pages already there are skipped by the kernel). Errors are
// ignored: this is only a hint.
func readAhead(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_WILLNEED)
}
