//go:build !linux

package bolt

// readAhead does nothing where posix_fadvise is not available: the
// free-page walk then reads the file page by page.
func readAhead(string) {}
