//go:build !linux

package sync

import (
	"os"
	"path/filepath"
)

// statAt returns the state of the regular file name in the open folder dir,
// without following a link; ok is false if it is gone or no longer a
// regular file, err set if it could not be looked at.
func statAt(dir *os.File, name string) (st fileState, ok bool, err error) {
	fi, err := os.Lstat(filepath.Join(dir.Name(), name))
	if err != nil {
		return fileState{}, false, err
	}
	if !fi.Mode().IsRegular() {
		return fileState{}, false, nil
	}
	return stateOf(fi), true, nil
}
