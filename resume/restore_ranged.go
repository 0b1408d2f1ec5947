package resume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	stdsync "sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

// rangedDownload brings one large object into a file with parallel ranged
// reads, as rclone's multi-thread streams do, and hashes it while it comes:
// the bytes are hashed in order, from the file, up to the first byte not yet
// written, so the hash finishes soon after the last range does.
type rangedDownload struct {
	r      *restorer
	key    string
	f      *os.File
	size   int64
	chunk  int64 // the size of every range but the last
	chunks int

	mu      stdsync.Mutex
	cond    *stdsync.Cond
	written []int64 // per range, the bytes written from its start
	stopped bool    // a range failed: the hasher gives up
}

// downloadRanged writes the object at key, of size bytes, into f and returns
// the SHA-256 of what it wrote.
func (r *restorer) downloadRanged(ctx context.Context, key string, f *os.File, size int64) (string, error) {
	d := &rangedDownload{r: r, key: key, f: f, size: size, chunk: r.tune.rangeSize}
	d.chunks = int((size + d.chunk - 1) / d.chunk)
	d.written = make([]int64, d.chunks)
	d.cond = stdsync.NewCond(&d.mu)

	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, d.stop) // wakes the hasher when a range fails
	defer stop()
	var next atomic.Int64
	for range min(r.tune.rangeStreams, d.chunks) {
		g.Go(func() error {
			for {
				i := int(next.Add(1) - 1)
				if i >= d.chunks || gctx.Err() != nil {
					return gctx.Err()
				}
				if err := d.fetch(gctx, i); err != nil {
					return err
				}
			}
		})
	}
	var sum string
	g.Go(func() (err error) {
		sum, err = d.hash()
		return err
	})
	if err := g.Wait(); err != nil {
		return "", err
	}
	return sum, nil
}

// bounds returns where range i starts and how long it is.
func (d *rangedDownload) bounds(i int) (off, n int64) {
	off = int64(i) * d.chunk
	return off, min(d.chunk, d.size-off)
}

// fetch reads range i from the store into the file.
func (d *rangedDownload) fetch(ctx context.Context, i int) error {
	off, n := d.bounds(i)
	rd, err := d.r.bucket.NewRangeReader(ctx, d.key, off, n, nil)
	if err != nil {
		return err
	}
	defer rd.Close()
	if rd.Size() != d.size {
		return fmt.Errorf("the object changed during the restore: it has %d bytes, it had %d", rd.Size(), d.size)
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	var done int64
	for done < n {
		m, err := io.ReadFull(rd, (*buf)[:min(int64(len(*buf)), n-done)])
		if m > 0 {
			if _, werr := d.f.WriteAt((*buf)[:m], off+done); werr != nil {
				return werr
			}
			done += int64(m)
			d.r.bytesDone.Add(int64(m))
			d.mu.Lock()
			d.written[i] = done
			d.mu.Unlock()
			d.cond.Signal()
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if done != n {
		return fmt.Errorf("read %d bytes at offset %d, the store said %d", done, off, n)
	}
	startWriteback(d.f, off, n)
	return nil
}

// frontier returns the offset of the first byte not yet written, where the
// hash has to stop, looking from range first on. Called with d.mu held.
func (d *rangedDownload) frontier(first int) int64 {
	for i := first; i < d.chunks; i++ {
		off, n := d.bounds(i)
		if d.written[i] < n {
			return off + d.written[i]
		}
	}
	return d.size
}

// hash hashes the file in order as the ranges fill it, and returns the
// SHA-256 of the whole object once it is all there.
func (d *rangedDownload) hash() (string, error) {
	h := sha256.New()
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	var hashed int64
	for hashed < d.size {
		d.mu.Lock()
		first := int(hashed / d.chunk)
		end := d.frontier(first)
		for end <= hashed && !d.stopped {
			d.cond.Wait()
			end = d.frontier(first)
		}
		stopped := d.stopped
		d.mu.Unlock()
		if stopped {
			return "", context.Canceled // the range's own error is the one returned
		}
		for hashed < end {
			m, err := d.f.ReadAt((*buf)[:min(int64(len(*buf)), end-hashed)], hashed)
			h.Write((*buf)[:m])
			hashed += int64(m)
			if err != nil && hashed < end {
				return "", fmt.Errorf("read back %s to hash it: %w", d.f.Name(), err)
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// stop wakes the hasher for good.
func (d *rangedDownload) stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.cond.Broadcast()
}
