package sync

import (
	"os"

	"golang.org/x/sys/unix"
)

// statAt returns the state of the regular file name in the open folder dir,
// without following a link; ok is false if it is gone or no longer a
// regular file, err set if it could not be looked at. It saves the kernel
// resolving the folder's path again for each of its files.
func statAt(dir *os.File, name string) (st fileState, ok bool, err error) {
	var s unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), name, &s, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fileState{}, false, &os.PathError{Op: "stat", Path: name, Err: err}
	}
	if s.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileState{}, false, nil
	}
	return fileState{Size: s.Size, ModTime: s.Mtim.Nano(), Inode: s.Ino}, true, nil
}
