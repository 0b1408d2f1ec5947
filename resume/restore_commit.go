package resume

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	stdsync "sync"
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

// commits puts the downloaded files in place in the background while the
// downloads go on, a batch at a time: the disk writes one batch out while
// the next is downloaded, instead of all of them after the last download.
type commits struct {
	start   stdsync.Once
	wake    chan struct{} // to the loop: a batch is waiting; closed by commitAll
	exited  chan struct{} // closed when the loop returns
	mu      stdsync.Mutex
	pending []pendingFile // downloaded and verified, not yet in place
	bytes   int64         // their sizes
	err     error         // the loop's first error: the restore stops
	// The folders whose renames are not durable yet, and whether their
	// batch was made durable with syncfs: the next batch's sync covers
	// them, or commitAll's last one.
	unsynced map[string]struct{}
	viaFS    bool
}

// addPending queues a downloaded file to be put in place, and wakes the
// background commit once tune.commitFiles files or tune.commitBytes wait.
// It returns the background commit's error, if it failed.
func (r *restorer) addPending(p pendingFile) error {
	c := &r.commits
	c.start.Do(func() {
		c.wake, c.exited = make(chan struct{}, 1), make(chan struct{})
		go r.commitLoop()
	})
	c.mu.Lock()
	c.pending = append(c.pending, p)
	c.bytes += p.size
	full := len(c.pending) >= r.tune.commitFiles || c.bytes >= r.tune.commitBytes
	err := c.err
	c.mu.Unlock()
	if full {
		select {
		case c.wake <- struct{}{}:
		default: // the loop is awake already: it takes this file too
		}
	}
	return err
}

// commitLoop commits what is queued each time addPending wakes it, until
// commitAll closes c.wake.
func (r *restorer) commitLoop() {
	c := &r.commits
	defer close(c.exited)
	for range c.wake {
		if err := r.commit(r.takePending(), false); err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			for range c.wake { // commitAll commits the rest, or removes it
			}
			return
		}
	}
}

// takePending empties the queue and returns what it held.
func (r *restorer) takePending() []pendingFile {
	c := &r.commits
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := c.pending
	c.pending, c.bytes = nil, 0
	return batch
}

// commitAll stops the background commit, commits what is queued and makes
// every rename durable. It returns the background commit's error too.
func (r *restorer) commitAll() error {
	c := &r.commits
	var err error
	c.start.Do(func() {}) // no file was queued: no loop to stop
	if c.wake != nil {
		close(c.wake)
		<-c.exited
		err = c.err
	}
	return errors.Join(err, r.commit(r.takePending(), true))
}

// commit makes a batch of files durable, renames them into place and, when
// last, makes the renames durable; otherwise the next batch's sync does. A
// crash at any point leaves either a temp file, which the next restore
// removes, or the whole file under its final name. On an error, the temp
// files of the batch not yet in place are removed. Batches are committed
// one at a time.
func (r *restorer) commit(batch []pendingFile, last bool) (err error) {
	c := &r.commits
	renamed := 0
	defer func() {
		if err != nil {
			for _, p := range batch[renamed:] {
				os.Remove(p.tmp)
			}
		}
	}()
	if len(batch) > 0 {
		dirs := map[string]struct{}{}
		for _, p := range batch {
			dirs[p.dir] = struct{}{}
		}
		synced := maps.Clone(c.unsynced)
		if synced == nil {
			synced = map[string]struct{}{}
		}
		maps.Copy(synced, dirs)
		// syncfs for many files, where an fsync each would cost a
		// journal commit each; an fsync of each file and folder for a
		// few, which does not wait for whatever else is written to the
		// same file system.
		many := len(batch) >= r.tune.syncfsFiles
		if err := r.makeDurable(batch, synced, many); err != nil {
			return err
		}
		// The last batch's renames are durable now; this one's are not.
		c.unsynced, c.viaFS = dirs, many
		for _, p := range batch {
			if err := os.Rename(p.tmp, p.target); err != nil {
				return fmt.Errorf("put %s in place: %w", p.target, err)
			}
			renamed++
		}
	}
	if !last || c.unsynced == nil {
		return nil
	}
	err = r.makeDurable(nil, c.unsynced, c.viaFS)
	c.unsynced = nil
	return err
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
