//go:build unix

package sync

import (
	"io/fs"
	"syscall"
)

// deviceOf is the file system a file is on.
func deviceOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev)
	}
	return 0
}
