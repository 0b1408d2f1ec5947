package resume

import (
	"os"

	"golang.org/x/sys/unix"
)

// syncFilesystem makes everything written to the file system that holds
// dir durable, with one syncfs(2): the restore's files, folders and renames
// at once, instead of an fsync per file.
func syncFilesystem(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Syncfs(int(f.Fd()))
}

// startWriteback asks the kernel to start writing n bytes of f from off to
// disk now, without waiting: a large file's ranges are then mostly on disk
// by the time the sync that makes them durable runs. Only a hint: an error
// is ignored, the sync still does the work.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// flushFile makes what was written to f so far durable (fdatasync(2)): the
// data and the size, not the times.
func flushFile(f *os.File) error {
	return unix.Fdatasync(int(f.Fd()))
}
