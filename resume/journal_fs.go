package resume

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// fileSystem is what the Keeper writes to the local disk through, so that a
// test can make the disk full.
type fileSystem interface {
	// WriteFile replaces name atomically and durably with what write
	// writes, streamed to the disk (a snapshot of a large manifest is not
	// held in memory whole).
	WriteFile(name string, write func(io.Writer) error) error
	// Append appends data to name, created with mode 0600 if missing; with
	// durable, the data is on the disk when it returns.
	Append(name string, data []byte, durable bool) error
	// Remove removes name; a missing name is not an error.
	Remove(name string) error
}

// osFS is the local disk.
type osFS struct{}

func (osFS) WriteFile(name string, write func(io.Writer) error) error {
	return writeFileAtomicFrom(name, write, true)
}

func (osFS) Append(name string, data []byte, durable bool) error {
	if err := os.MkdirAll(filepath.Dir(name), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return writeAndClose(f, data, durable)
}

// writeAndClose writes data to f, fsyncs it when durable, and closes it.
func writeAndClose(f *os.File, data []byte, durable bool) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if durable {
		if err := f.Sync(); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}

func (osFS) Remove(name string) error {
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// writeFileAtomic replaces path with data through a temp file in the same
// folder and a rename, so a killed process leaves the old file or the new,
// never a torn one. With durable, the data and the folder are fsynced too,
// which a machine crash needs and a killed process does not.
func writeFileAtomic(path string, data []byte, durable bool) error {
	return writeFileAtomicFrom(path, func(w io.Writer) error { _, err := w.Write(data); return err }, durable)
}

// writeFileAtomicFrom is writeFileAtomic with the content streamed by write.
func writeFileAtomicFrom(path string, write func(io.Writer) error, durable bool) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	if durable {
		if d, err := os.Open(dir); err == nil {
			_ = d.Sync()
			d.Close()
		}
	}
	return nil
}
