package resume

import (
	"errors"
	"fmt"
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

// preallocate reserves size bytes of disk for f, which is then written at
// offsets (FALLOC_FL_KEEP_SIZE: its size still grows as it is written): the
// file system allocates the blocks at once instead of page by page as the
// ranges come, and a disk without room says so before the download. Only
// ENOSPC is an error; a file system that cannot preallocate writes the file
// all the same.
func preallocate(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if errors.Is(err, unix.ENOSPC) {
		return fmt.Errorf("no room on the disk for %d bytes: %w", size, err)
	}
	return nil
}
