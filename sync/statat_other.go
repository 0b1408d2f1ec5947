//go:build !linux

package sync

import (
	"os"
	"path/filepath"
)

// statAt returns the state of the regular file name in the open folder dir,
// without following a link; ok is false if it is gone or no longer a
// regular file.
func statAt(dir *os.File, name string) (st fileState, ok bool) {
	fi, err := os.Lstat(filepath.Join(dir.Name(), name))
	if err != nil || !fi.Mode().IsRegular() {
		return fileState{}, false
	}
	return stateOf(fi), true
}
