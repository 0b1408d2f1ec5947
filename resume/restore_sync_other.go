//go:build !linux

package resume

import (
	"errors"
	"os"
)

// syncFilesystem is syncfs(2), which only Linux has: the restore falls back
// to an fsync of each file and folder.
func syncFilesystem(string) error {
	return errors.ErrUnsupported
}

// startWriteback is sync_file_range(2)'s hint, which only Linux has.
func startWriteback(*os.File, int64, int64) {}

// flushFile makes what was written to f so far durable.
func flushFile(f *os.File) error {
	return f.Sync()
}

// preallocate is fallocate(2), which only Linux has here: the file's blocks
// are allocated as it is written.
func preallocate(*os.File, int64) error { return nil }
