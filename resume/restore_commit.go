package resume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// pendingFile is a file downloaded and verified under its temp name, not yet
// durable nor in place.
type pendingFile struct {
	tmp, target string
	dir         string // the folder of both
	size        int64
}

// addPending queues a downloaded file to be put in place, and commits the
// queue once it holds tune.commitBytes.
func (r *restorer) addPending(p pendingFile) error {
	r.pendingMu.Lock()
	r.pending = append(r.pending, p)
	r.pendingBytes += p.size
	var batch []pendingFile
	if r.pendingBytes >= r.tune.commitBytes {
		batch, r.pending, r.pendingBytes = r.pending, nil, 0
	}
	r.pendingMu.Unlock()
	if batch == nil {
		return nil
	}
	return r.commit(batch)
}

// commitAll commits what is queued.
func (r *restorer) commitAll() error {
	r.pendingMu.Lock()
	batch := r.pending
	r.pending, r.pendingBytes = nil, 0
	r.pendingMu.Unlock()
	return r.commit(batch)
}

// commit makes a batch of files durable, renames them into place and makes
// the renames durable: a crash at any point leaves either a temp file, which
// the next restore removes, or the whole file under its final name. On an
// error, the temp files of the batch not yet in place are removed.
func (r *restorer) commit(batch []pendingFile) (err error) {
	if len(batch) == 0 {
		return nil
	}
	r.commitMu.Lock()
	defer r.commitMu.Unlock()
	renamed := 0
	defer func() {
		if err != nil {
			for _, p := range batch[renamed:] {
				os.Remove(p.tmp)
			}
		}
	}()

	dirs := map[string]struct{}{}
	for _, p := range batch {
		dirs[p.dir] = struct{}{}
	}
	// syncfs for many files, where an fsync each would cost a journal
	// commit each; an fsync of each file and folder for a few, which does
	// not wait for whatever else is written to the same file system.
	many := len(batch) >= r.tune.syncfsFiles
	if err := r.makeDurable(batch, dirs, many); err != nil {
		return err
	}
	for _, p := range batch {
		if err := os.Rename(p.tmp, p.target); err != nil {
			return fmt.Errorf("put %s in place: %w", p.target, err)
		}
		renamed++
	}
	return r.makeDurable(nil, dirs, many)
}

// makeDurable makes the files and the folders' entries durable: with
// syncfs, one syncfs per file system the folders are on where the system
// has it; otherwise an fsync of each file, then of each folder and those
// above it up to the restore's folder.
func (r *restorer) makeDurable(files []pendingFile, dirs map[string]struct{}, syncfs bool) error {
	if syncfs {
		err := r.syncFilesystems(dirs)
		if err == nil {
			return nil
		}
		if !errors.Is(err, errors.ErrUnsupported) && !errors.Is(err, syscall.ENOSYS) {
			return err
		}
	}
	g := new(errgroup.Group)
	g.SetLimit(16)
	for _, p := range files {
		g.Go(func() error { return fsyncPath(p.tmp) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	synced := map[string]struct{}{}
	for d := range dirs {
		for ; ; d = filepath.Dir(d) {
			if _, ok := synced[d]; ok {
				break
			}
			synced[d] = struct{}{}
			if err := fsyncPath(d); err != nil && !errors.Is(err, syscall.EINVAL) { // some file systems cannot sync a folder
				return err
			}
			if d == r.dir || filepath.Dir(d) == d {
				break
			}
		}
	}
	return nil
}

// syncFilesystems calls syncfs once for each file system that holds one of
// dirs (a subfolder may be another mount).
func (r *restorer) syncFilesystems(dirs map[string]struct{}) error {
	devs := map[uint64]struct{}{}
	for d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("sync folder %s: %w", d, err)
		}
		dev := uint64(0)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			dev = uint64(st.Dev)
		}
		if _, ok := devs[dev]; ok {
			continue
		}
		devs[dev] = struct{}{}
		if err := syncFilesystem(d); err != nil {
			return fmt.Errorf("sync the file system of %s: %w", d, err)
		}
	}
	return nil
}

// fsyncPath opens the file or folder at p and fsyncs it.
func fsyncPath(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}
