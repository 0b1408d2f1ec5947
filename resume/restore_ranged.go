package resume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	stdsync "sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/stores"
)

// rangedDownload brings one large object into a file with parallel ranged
// reads, as rclone's multi-thread streams do, each written at its offset as
// it arrives. The bytes are checked on the way: when the store keeps a
// checksum of the whole object, each stream computes the CRC32 of its own
// ranges, and the ranges' CRCs combined must equal the store's; otherwise
// the file is hashed (SHA-256) in order, from the page cache, up to the
// first byte not yet written, so the hash finishes soon after the last range
// does. The file is made durable as it fills: each range written whole is
// handed to the kernel's writeback at once, and every tune.flushBytes a
// background fdatasync waits for it, so that the sync before the rename has
// little left to do.
type rangedDownload struct {
	r      *restorer
	key    string
	f      *os.File
	size   int64
	chunk  int64 // the size of every range but the last
	chunks int
	stored *stores.ObjectChecksum // the store's checksum of the object; nil: hash the file
	crcs   []uint32               // per range, its CRC32 when stored is set

	unflushed atomic.Int64  // bytes of whole ranges written since the last fdatasync was asked for
	flush     chan struct{} // to the flusher: time for an fdatasync

	mu      stdsync.Mutex
	cond    *stdsync.Cond
	written []int64 // per range, the bytes written from its start
	stopped bool    // a range failed: the hasher gives up
}

// preallocateFrom is the size from which a file's blocks are reserved
// before it is written (preallocate): below it the syscall costs more than
// the allocation it saves.
const preallocateFrom = 1 << 20

// downloadRanged writes the object at key, of size bytes, into f. With a
// stored checksum it checks the bytes against it and returns ""; without,
// it returns the SHA-256 of what it wrote.
func (r *restorer) downloadRanged(ctx context.Context, key string, f *os.File, size int64, stored *stores.ObjectChecksum) (string, error) {
	// Ranges of tune.rangeSize, smaller for an object that would not give
	// every stream one (in whole 64 KiB, so that streams share no page).
	const unit = 64 << 10
	chunk := min(r.tune.rangeSize, (size+int64(r.tune.rangeStreams)-1)/int64(r.tune.rangeStreams))
	chunk = (chunk + unit - 1) / unit * unit
	d := &rangedDownload{r: r, key: key, f: f, size: size, chunk: chunk, stored: stored}
	d.chunks = int((size + d.chunk - 1) / d.chunk)
	d.written = make([]int64, d.chunks)
	d.crcs = make([]uint32, d.chunks)
	d.cond = stdsync.NewCond(&d.mu)
	streams := min(r.tune.rangeStreams, d.chunks)
	d.flush = make(chan struct{}, 1)

	if size >= preallocateFrom {
		if err := preallocate(f, size); err != nil {
			return "", err
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	stop := context.AfterFunc(gctx, d.stop) // wakes the hasher when a range fails
	defer stop()
	var next atomic.Int64
	var running atomic.Int32
	running.Store(int32(streams))
	for range streams {
		g.Go(func() error {
			defer func() {
				if running.Add(-1) == 0 {
					close(d.flush) // the last stream out ends the flusher
				}
			}()
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
	g.Go(func() error { return d.flusher(gctx) })
	var sum string
	if stored == nil {
		g.Go(func() (err error) {
			sum, err = d.hash()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	if stored != nil {
		return "", d.check()
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
	var table *crc32.Table
	if d.stored != nil {
		table = crcTable(*d.stored)
	}
	// Writes of 128 KiB, as rclone's: with larger ones the kernel's copy
	// into the page cache took several times the CPU (Linux 6.18, ext4),
	// which a server that needs CPU of its own (MinIO) does not leave.
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	var done int64
	var crc uint32
	for done < n {
		m, err := io.ReadFull(rd, (*buf)[:min(int64(len(*buf)), n-done)])
		if m > 0 {
			if _, werr := d.f.WriteAt((*buf)[:m], off+done); werr != nil {
				return werr
			}
			if table != nil {
				crc = crc32.Update(crc, table, (*buf)[:m])
			}
			done += int64(m)
			d.r.bytesDone.Add(int64(m))
			if table == nil { // the hasher follows the written prefix
				d.mu.Lock()
				d.written[i] = done
				d.mu.Unlock()
				d.cond.Signal()
			}
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
	d.crcs[i] = crc
	startWriteback(d.f, off, n)
	if d.unflushed.Add(n) >= d.r.tune.flushBytes {
		d.unflushed.Store(0)
		select {
		case d.flush <- struct{}{}:
		default: // one is pending: it covers this range too
		}
	}
	return nil
}

// flusher makes the file durable in the background each time a stream
// asks, until the streams are done.
func (d *rangedDownload) flusher(ctx context.Context) error {
	for range d.flush {
		if ctx.Err() != nil {
			continue // a range failed: the file is removed, not kept
		}
		if err := flushFile(d.f); err != nil {
			return fmt.Errorf("sync %s: %w", d.f.Name(), err)
		}
	}
	return nil
}

// check compares the CRC32 of the ranges, combined, with the store's.
func (d *rangedDownload) check() error {
	var crc uint32
	for i := range d.chunks {
		_, n := d.bounds(i)
		crc = stores.CombineCRC32(d.stored.Polynomial(), crc, d.crcs[i], n)
	}
	if crc != d.stored.CRC32 {
		return fmt.Errorf("downloaded bytes have %s %08x, the store's checksum of the object is %08x", d.stored.Algorithm(), crc, d.stored.CRC32)
	}
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

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// crcTable is the table of the checksum's polynomial.
func crcTable(c stores.ObjectChecksum) *crc32.Table {
	if c.Castagnoli {
		return castagnoliTable
	}
	return crc32.IEEETable
}
