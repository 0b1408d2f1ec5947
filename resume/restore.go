package resume

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"syscall"
	"time"
	"unicode/utf8"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
	"golang.org/x/sync/errgroup"

	"github.com/mlsidecar/collector/internal/pathglob"
	"github.com/mlsidecar/collector/stores"
)

// RestoreOptions tune Restore.
type RestoreOptions struct {
	// Include limits the restore to matching paths, with the sync engine's
	// rules: a glob without a slash matches the file's name at any depth, one
	// with a slash matches its path from the outputs folder (path.Match).
	// Empty restores everything.
	Include []string
	// Workers is the number of parallel downloads; 16 when not above 0.
	Workers int
	// Known holds the hashes recorded in the run's state. They are used for
	// objects that carry no sha256 metadata (host_path stores keep none).
	// May be nil.
	Known Manifest
	// FromKnown restores what Known lists and the folder lacks, without
	// listing the store: Known is then this machine's own state, saved by
	// the collector that ran here before (a restarted container), and the
	// folder is most likely whole. An entry the store no longer has is left
	// out with a warning.
	FromKnown bool
	// CommitMarkers are the file names that say their folder is complete
	// (the sync engine's --commit-marker). A folder whose marker Known
	// records but the store does not hold is left out, with one warning:
	// the store's copy of it may be incomplete. Not checked with FromKnown.
	CommitMarkers []string
	// Replica, for the restore of one replica's own files (FromKnown with
	// its state), is its name: a path another replica's object holds now is
	// restored from this replica's copy, <path>.replica-<name>, where the
	// store has one (restore_replica.go).
	Replica string
	// Attributes reads an object's attributes for Replica's look, with the
	// metadata the store keeps beside the bucket (a folder store's extended
	// attributes: stores.Target.Attributes); the bucket's own when nil.
	Attributes func(ctx context.Context, key string) (*blob.Attributes, error)
	// Unmarked are the commit markers (paths) that the sync engine saw in
	// the folder and had not stored yet when the state was last saved: a
	// folder of one whose marker the store does not hold is left out too,
	// whatever CommitMarkers is.
	Unmarked []string
	Logger   *slog.Logger
	// Progress, if set, is called from one goroutine at most every 200ms
	// while files are restored, and once at the end.
	Progress func(done, total int, bytesDone, bytesTotal int64)
}

// RestoreStats says what Restore did.
type RestoreStats struct {
	Files   int   // files restored or found already present
	Bytes   int64 // their bytes
	Skipped int   // files already present and identical, not downloaded
	Kept    int   // local files that differ from the store's, kept and left to the sync
	Took    time.Duration
}

// UnsafeKeyError is returned when an object key would land outside the
// folder being restored into, or pass through a symbolic link on its way
// there. Restore downloads nothing when it returns one.
type UnsafeKeyError struct {
	Key    string
	Reason string
}

func (e *UnsafeKeyError) Error() string {
	return fmt.Sprintf("unsafe key %q in the store: %s", e.Key, e.Reason)
}

const (
	defaultRestoreWorkers = 16
	progressInterval      = 200 * time.Millisecond
	// tempMarker is in the name of every file a restore writes before it
	// renames it into place; a file with it is left over from a killed one.
	tempMarker = ".collector-restore-"
)

// restoreItem is one object to restore.
type restoreItem struct {
	key  string // the object's key in the run's bucket
	rel  string // slash path under the outputs folder
	size int64  // as listed
}

// Restore downloads every object under outputs/ of the run's bucket into dir
// and returns the manifest of what it restored: for each file the local
// size, mtime (after download) and inode, and its SHA-256, so that the sync
// engine does not upload it again.
//
// Every key is checked before anything is downloaded: one that would land
// outside dir or pass through a symbolic link inside it fails the restore with
// an *UnsafeKeyError. Each file is written to a temp file next to its target
// and checked on the way; a large object comes in ranges read in parallel,
// checked as they arrive and synced in the background as they are written.
// Files are made durable in batches while the downloads go on (one syncfs
// for many files where the system has it, an fsync of each file otherwise)
// and only then renamed into place, so an interrupted restore never leaves a torn file under a final
// name; temp files left by a killed restore are removed by the next one.
// Everything restored is durable, renames included, when Restore returns;
// when it fails, the files finished before the failure are kept in place. A
// file already present with the same size and hash is not downloaded again.
//
// Every byte is checked. A large object (64 MiB and up) for which the store
// keeps a CRC32 of the whole object (S3 keeps one for the collector's
// uploads) is checked against it, and a mismatch is an error naming the
// key; its hash in the manifest is then the object's sha256 metadata, or the
// one in Known. Other objects are hashed: the bytes are checked against the
// object's sha256 metadata, and a mismatch is an error naming the key. An
// object without that metadata is checked against the hash in Known when
// Known has the same size; a mismatch there is only logged, since a state
// checkpointed at the end of a sync pass can lag behind objects uploaded
// during it, and the store's copy is the one kept. (A large object checked
// against the store's CRC32 takes Known's hash as it is: after such a lag,
// the manifest holds the earlier version's hash until the file changes.)
func Restore(ctx context.Context, run *blob.Bucket, dir string, opts RestoreOptions) (Manifest, RestoreStats, error) {
	start := time.Now()
	r := &restorer{
		bucket: run,
		dir:    dir,
		known:  opts.Known,
		log:    opts.Logger,
		tune:   restoreTuning,
		dirsOK: map[string]struct{}{},
		attrs:  opts.Attributes,
	}
	if r.attrs == nil {
		r.attrs = run.Attributes
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = defaultRestoreWorkers
	}

	var items []restoreItem
	var err error
	if opts.FromKnown {
		items, err = knownOutputs(opts.Known, opts.Include)
	} else {
		items, err = listOutputs(ctx, run, opts.Include)
	}
	if err != nil {
		return nil, RestoreStats{}, err
	}
	if !opts.FromKnown {
		items = leaveOutUnmarked(items, opts.Known, opts.CommitMarkers, opts.Unmarked, r.log)
	}
	if err := checkTargets(dir, items); err != nil {
		return nil, RestoreStats{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, RestoreStats{}, fmt.Errorf("restore into %s: %w", dir, err)
	}
	if err := r.removeStaleTemps(); err != nil {
		return nil, RestoreStats{}, err
	}

	var bytesTotal int64
	for _, it := range items {
		bytesTotal += it.size
	}
	stopProgress := r.reportProgress(opts.Progress, len(items), bytesTotal)

	out := make(Manifest, len(items))
	var mu stdsync.Mutex
	var skipped int
	restore := func(ctx context.Context, it restoreItem) error {
		it, err := r.ownCopy(ctx, it, opts.Replica)
		var e Entry
		var skip bool
		if err == nil {
			e, skip, err = r.restoreOne(ctx, it)
			e.Key = it.objectKey()
		}
		if errors.Is(err, errKeptLocal) {
			r.done.Add(1)
			return nil
		}
		if err != nil && opts.FromKnown && gcerrors.Code(err) == gcerrors.NotFound {
			r.log.Warn("in the run's state but no longer in the store; not restored", "key", it.key)
			r.done.Add(1)
			return nil
		}
		if err != nil {
			return fmt.Errorf("restore %q: %w", it.key, err)
		}
		r.done.Add(1)
		mu.Lock()
		defer mu.Unlock()
		out[it.rel] = &e
		if skip {
			skipped++
		}
		return nil
	}
	// A fixed set of workers, not a goroutine per file: a download runs
	// deep in the store's SDK, and a new goroutine's stack grew (and was
	// copied) again for every file.
	todo := make(chan restoreItem)
	g, gctx := errgroup.WithContext(ctx)
	for range min(workers, len(items)) {
		g.Go(func() error {
			for it := range todo {
				if gctx.Err() != nil {
					continue // a download failed: the rest are not started
				}
				if err := restore(gctx, it); err != nil {
					return err
				}
			}
			return nil
		})
	}
feed:
	for _, it := range items {
		select {
		case todo <- it:
		case <-gctx.Done():
			break feed // a download failed: start no more
		}
	}
	close(todo)
	err = g.Wait()
	if err == nil {
		err = ctx.Err() // the loop stopped early on a canceled context
	}
	// The files finished so far are put in place even when the restore
	// failed: the next one finds them there and downloads them no more.
	if cerr := r.commitAll(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	stopProgress()
	stats := RestoreStats{Files: len(out), Skipped: skipped, Kept: int(r.kept.Load()), Took: time.Since(start)}
	for _, e := range out {
		stats.Bytes += e.Size
	}
	if err != nil {
		return nil, stats, err
	}
	return out, stats, nil
}

// knownOutputs returns the files of a state's manifest that Include selects,
// in path order, checking every path as listOutputs checks keys.
func knownOutputs(known Manifest, include []string) ([]restoreItem, error) {
	items := make([]restoreItem, 0, len(known))
	for rel, e := range known {
		if reason := unsafeRel(rel); reason != "" {
			return nil, &UnsafeKeyError{Key: OutputsPrefix + rel, Reason: reason}
		}
		if len(include) > 0 && !pathglob.List(include).Match(rel, false) {
			continue
		}
		items = append(items, restoreItem{key: OutputsPrefix + e.ObjectKey(rel), rel: rel, size: e.Size})
	}
	slices.SortFunc(items, func(a, b restoreItem) int { return strings.Compare(a.rel, b.rel) })
	return items, nil
}

// listOutputs lists the objects under outputs/, checks every key and returns
// those Include selects, in the store's order. Folder markers are skipped.
func listOutputs(ctx context.Context, b *blob.Bucket, include []string) ([]restoreItem, error) {
	var items []restoreItem
	it := stores.List(b, &blob.ListOptions{Prefix: OutputsPrefix})
	for {
		obj, err := it.Next(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("list the run's outputs in the store: %w", err)
		}
		if strings.HasSuffix(obj.Key, "/") {
			continue // a folder marker written by some tools: no file to restore
		}
		if stores.IsPartial(obj.Key) {
			continue // a host path's upload in flight, not an output
		}
		rel := strings.TrimPrefix(obj.Key, OutputsPrefix)
		if reason := unsafeRel(rel); reason != "" {
			return nil, &UnsafeKeyError{Key: obj.Key, Reason: reason}
		}
		if len(include) > 0 && !pathglob.List(include).Match(rel, false) {
			continue
		}
		items = append(items, restoreItem{key: obj.Key, rel: rel, size: obj.Size})
	}
	return items, nil
}

// unsafeRel says why rel cannot name a file under the outputs folder, or ""
// when it can.
func unsafeRel(rel string) string {
	switch {
	case rel == "":
		return "empty path"
	case strings.HasPrefix(rel, "/"):
		return "absolute path"
	case strings.ContainsRune(rel, 0):
		return "NUL byte in the path"
	case os.PathSeparator == '\\' && strings.Contains(rel, `\`):
		// A folder separator only where the system says so: on Linux
		// a\b is one file's name, which the sync uploads as it is.
		return "backslash in the path"
	case rel == ".." || strings.HasPrefix(rel, "../") || strings.HasSuffix(rel, "/..") || strings.Contains(rel, "/../"):
		return `".." in the path`
	case path.Clean(rel) != rel:
		return "path is not clean"
	}
	return ""
}

// checkTargets refuses, before anything is written, keys whose target would
// be reached through a symbolic link under dir, and keys that cannot be
// restored as files: a folder already there under the file's name, a file
// where one of its folders should be, or another key that needs the file's
// name as a folder.
func checkTargets(dir string, items []restoreItem) error {
	rels := make(map[string]struct{}, len(items))
	for _, it := range items {
		rels[it.rel] = struct{}{}
	}
	seen := map[string]fs.FileMode{} // parent folder (slash rel) -> type; absent when not there
	missing := map[string]bool{}
	for _, it := range items {
		parts := strings.Split(it.rel, "/")
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], "/")
			if _, ok := rels[p]; ok {
				return fmt.Errorf("restore %q: %q is both a file and a folder in the store", it.key, OutputsPrefix+p)
			}
			if missing[p] {
				break // nothing below it exists either
			}
			mode, ok := seen[p]
			if !ok {
				fi, err := os.Lstat(filepath.Join(dir, filepath.FromSlash(p)))
				if errors.Is(err, fs.ErrNotExist) {
					missing[p] = true
					break
				}
				if err != nil {
					return fmt.Errorf("restore %q: %w", it.key, err)
				}
				mode = fi.Mode().Type()
				seen[p] = mode
			}
			switch {
			case mode&fs.ModeSymlink != 0:
				return &UnsafeKeyError{Key: it.key, Reason: fmt.Sprintf("%s is a symbolic link in %s", p, dir)}
			case !mode.IsDir():
				return fmt.Errorf("restore %q: %s in %s is not a folder", it.key, p, dir)
			}
		}
		target := filepath.Join(dir, filepath.FromSlash(it.rel))
		if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
			return fmt.Errorf("restore %q: %s is a folder", it.key, target)
		}
	}
	return nil
}

// restorer holds what the downloads share.
type restorer struct {
	bucket *blob.Bucket
	attrs  func(ctx context.Context, key string) (*blob.Attributes, error) // RestoreOptions.Attributes
	dir    string
	known  Manifest
	log    *slog.Logger
	tune   tuning

	done      atomic.Int64 // files finished
	bytesDone atomic.Int64 // bytes downloaded or found present
	kept      atomic.Int64 // local files kept although they differ

	mu     stdsync.Mutex
	dirsOK map[string]struct{} // folders made or checked by mkdirs

	commits commits // the downloaded files on their way into place
}

// tuning holds the sizes a restore works with; tests shrink them.
type tuning struct {
	rangeCutoff  int64 // objects of at least this size are read in ranges
	rangeSize    int64 // the size of each range
	rangeStreams int   // ranges of one object read at once
	flushBytes   int64 // a large file is synced in the background every this many bytes
	commitFiles  int   // a batch is made durable and put in place in the background from this many files
	commitBytes  int64 // or from this size
	syncfsFiles  int   // a batch of at least this many files is made durable with syncfs
}

// restoreTuning: from 64 MiB on, 4 streams of ranges of up to 64 MiB, as
// rclone reads (a request per 16 MiB cost the S3 test server half again
// the CPU per byte); a large file synced in the background every 128 MiB;
// a batch made durable and put in place in the background from 256 files
// or a GiB (whatever waits when the previous batch is done), so that the
// disk writes one out while the next downloads and a restore killed late
// keeps most of its work; syncfs from 16 files.
var restoreTuning = tuning{
	rangeCutoff:  64 << 20,
	rangeSize:    64 << 20,
	rangeStreams: 4,
	flushBytes:   128 << 20,
	commitFiles:  256,
	commitBytes:  1 << 30,
	syncfsFiles:  16,
}

// copyBuffers holds the download buffers, one per worker at a time. Their
// size is the size of each write into a restored file (see fetch).
var copyBuffers = stdsync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// errKeptLocal says a local file differs from the store's and was kept.
var errKeptLocal = errors.New("local file kept")

// restoreOne brings one object to its target and returns its manifest entry,
// and whether the file was already there.
func (r *restorer) restoreOne(ctx context.Context, it restoreItem) (Entry, bool, error) {
	target := filepath.Join(r.dir, filepath.FromSlash(it.rel))
	// The file the state says the store holds, untouched since: no request,
	// no hashing (a restarted container still has its folder).
	if k, ok := r.known[it.rel]; ok && k.Size == it.size && !k.SHA256.IsZero() {
		if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() && k.SameFile(fi.Size(), fi.ModTime().UnixNano(), InodeOf(fi)) {
			r.bytesDone.Add(fi.Size())
			return entryOf(fi, k.SHA256.String()), true, nil
		}
	}
	// The hash to verify against: the run's state has it for every file it
	// uploaded, which saves a request per object; otherwise the object's
	// metadata (absent on host paths and on S3 objects that carry a
	// full-object checksum). A large object is checked against the
	// checksum the store keeps of all its bytes where there is one, which
	// costs a HEAD and spares hashing it.
	size, want, fromMetadata := it.size, "", false
	if k, ok := r.known[it.rel]; ok && k.Size == it.size {
		want = k.SHA256.String()
	}
	var stored *stores.ObjectChecksum
	if want == "" || it.size >= r.tune.rangeCutoff {
		attrs, err := r.bucket.Attributes(ctx, it.key)
		if err != nil {
			return Entry{}, false, err
		}
		if attrs.Size != size {
			want = "" // the state's hash is of another version of the object
		}
		size = attrs.Size
		if meta := attrs.Metadata[stores.HashMetadataKey]; meta != "" {
			want, fromMetadata = meta, true
		}
		if c, ok := stores.StoredChecksum(attrs); ok && want != "" && size >= r.tune.rangeCutoff {
			stored = &c
		}
	}
	if fi, err := os.Lstat(target); err == nil && fi.Mode().IsRegular() {
		e, same, err := present(target, size, want)
		if err != nil {
			return Entry{}, false, err
		}
		if same {
			r.bytesDone.Add(e.Size)
			return e, true, nil
		}
		// A different local file is the job's newer work (a restarted
		// container keeps its folder): never overwrite it; the sync
		// engine uploads it.
		r.log.Info("keeping the local file, which differs from the store's", "key", it.key)
		r.kept.Add(1)
		r.bytesDone.Add(size)
		return Entry{}, true, errKeptLocal
	}

	parent, err := r.mkdirs(it)
	if err != nil {
		return Entry{}, false, err
	}
	f, err := os.CreateTemp(parent, tempPattern(path.Base(it.rel)))
	if err != nil {
		return Entry{}, false, err
	}
	tmp, handedOver := f.Name(), false
	defer func() {
		if !handedOver {
			f.Close()
			os.Remove(tmp)
		}
	}()

	var sum string
	switch {
	case stored != nil:
		// Every byte checked against the store's checksum: the file is
		// the object whose hash want is.
		if _, err = r.downloadRanged(ctx, it.key, f, size, stored); err == nil {
			sum = want
		}
	case size >= r.tune.rangeCutoff:
		sum, err = r.downloadRanged(ctx, it.key, f, size, nil)
	default:
		sum, err = r.downloadStream(ctx, it.key, f, size)
	}
	if err != nil {
		return Entry{}, false, err
	}
	if want != "" && !strings.EqualFold(sum, want) && !fromMetadata {
		// The state can lag behind an object uploaded again in the pass
		// that was interrupted: the object's own metadata decides.
		attrs, err := r.bucket.Attributes(ctx, it.key)
		if err != nil {
			return Entry{}, false, err
		}
		if meta := attrs.Metadata[stores.HashMetadataKey]; meta != "" {
			want, fromMetadata = meta, true
		} else {
			r.log.Warn("restored file differs from the run's state; keeping the store's copy",
				"key", it.key, "sha256", sum, "state_sha256", want)
			want = sum
		}
	}
	if want != "" && !strings.EqualFold(sum, want) {
		return Entry{}, false, fmt.Errorf("downloaded bytes have sha256 %s, the object's metadata says %s", sum, want)
	}
	if err := f.Chmod(0o644); err != nil {
		return Entry{}, false, err
	}
	fi, err := f.Stat()
	if err != nil {
		return Entry{}, false, err
	}
	if err := f.Close(); err != nil {
		return Entry{}, false, err
	}
	handedOver = true // the commit renames it into place, or removes it
	r.log.Debug("restored", "key", it.key, "bytes", size)
	if err := r.addPending(pendingFile{tmp: tmp, target: target, dir: parent, size: size}); err != nil {
		return Entry{}, false, err
	}
	// Rename keeps the inode and mtime the temp file had.
	return entryOf(fi, sum), false, nil
}

// downloadStream writes the object at key, of size bytes, into f with one
// read, and returns the SHA-256 of what it wrote.
func (r *restorer) downloadStream(ctx context.Context, key string, f *os.File, size int64) (string, error) {
	rd, err := r.bucket.NewReader(ctx, key, nil)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	// A pooled buffer, and the reader hidden behind io.Reader: blob.Reader's
	// WriteTo allocates a fresh 1 MiB buffer per object, which dominated the
	// CPU of restoring many small files.
	buf := copyBuffers.Get().(*[]byte)
	n, err := io.CopyBuffer(io.MultiWriter(f, h, progressWriter{&r.bytesDone}), struct{ io.Reader }{rd}, *buf)
	copyBuffers.Put(buf)
	if cerr := rd.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", err
	}
	if n != size {
		return "", fmt.Errorf("read %d bytes, the store says the object has %d", n, size)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// present returns the entry of the regular file at target when it has the
// object's size and, when known, its hash.
func present(target string, size int64, want string) (Entry, bool, error) {
	fi, err := os.Lstat(target)
	if err != nil || !fi.Mode().IsRegular() || fi.Size() != size {
		return Entry{}, false, nil
	}
	f, err := os.Open(target)
	if err != nil {
		return Entry{}, false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return Entry{}, false, err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if want != "" && !strings.EqualFold(sum, want) {
		return Entry{}, false, nil
	}
	if fi, err = f.Stat(); err != nil || fi.Size() != size {
		return Entry{}, false, err
	}
	return entryOf(fi, sum), true, nil
}

// mkdirs makes the folders of it's target under dir, one at a time, refusing
// to go through a symbolic link that appeared since the keys were checked. A
// folder it made or checked once is not checked again. It returns the
// target's folder.
func (r *restorer) mkdirs(it restoreItem) (string, error) {
	parent := filepath.Join(r.dir, filepath.FromSlash(path.Dir(it.rel)))
	r.mu.Lock()
	_, ok := r.dirsOK[parent]
	r.mu.Unlock()
	if ok {
		return parent, nil
	}
	cur := r.dir
	parts := strings.Split(it.rel, "/")
	for _, p := range parts[:len(parts)-1] {
		cur = filepath.Join(cur, p)
		r.mu.Lock()
		_, ok := r.dirsOK[cur]
		r.mu.Unlock()
		if ok {
			continue
		}
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			err = os.Mkdir(cur, 0o755)
			if err == nil || errors.Is(err, fs.ErrExist) { // another download may have made it
				fi, err = os.Lstat(cur)
			}
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", &UnsafeKeyError{Key: it.key, Reason: fmt.Sprintf("%s is a symbolic link", cur)}
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("%s is not a folder", cur)
		}
		r.mu.Lock()
		r.dirsOK[cur] = struct{}{}
		r.mu.Unlock()
	}
	return cur, nil
}

// tempPattern is the os.CreateTemp pattern for a file named base: hidden,
// marked, and short enough for the usual 255-byte name limit.
func tempPattern(base string) string {
	const maxBase = 200
	if len(base) > maxBase {
		base = base[:maxBase]
		for !utf8.ValidString(base) {
			base = base[:len(base)-1]
		}
	}
	return "." + base + tempMarker + "*"
}

// isTempName tells whether name is one tempPattern makes.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}

// removeStaleTemps removes the temp files a killed restore left in dir. It
// does not follow symbolic links.
func (r *restorer) removeStaleTemps() error {
	err := filepath.WalkDir(r.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && isTempName(d.Name()) {
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			r.log.Info("removed a temp file left by an interrupted restore", "path", p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove temp files of an earlier restore in %s: %w", r.dir, err)
	}
	return nil
}

// reportProgress calls progress every progressInterval while files are
// restored, when something changed, and once more when the returned function
// is called. It returns a no-op for a nil progress.
func (r *restorer) reportProgress(progress func(done, total int, bytesDone, bytesTotal int64), total int, bytesTotal int64) (stop func()) {
	if progress == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		lastDone, lastBytes := int64(-1), int64(-1)
		for {
			select {
			case <-quit:
				progress(int(r.done.Load()), total, r.bytesDone.Load(), bytesTotal)
				return
			case <-t.C:
				d, b := r.done.Load(), r.bytesDone.Load()
				if d != lastDone || b != lastBytes {
					progress(int(d), total, b, bytesTotal)
					lastDone, lastBytes = d, b
				}
			}
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// progressWriter counts the bytes written through it.
type progressWriter struct{ n *atomic.Int64 }

func (w progressWriter) Write(p []byte) (int, error) {
	w.n.Add(int64(len(p)))
	return len(p), nil
}

func entryOf(fi fs.FileInfo, sum string) Entry {
	d, _ := ParseDigest(sum) // a hash of ours, or one checked equal to it
	return Entry{Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), Inode: InodeOf(fi), SHA256: d}
}

// InodeOf returns the inode a manifest Entry records for a file, or 0
// where the platform has none.
func InodeOf(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Ino)
	}
	return 0
}

// leaveOutUnmarked drops the items of each folder (and below) whose commit
// marker the store does not hold (not among items) while the local copy had
// one: a marker that known records (the folder was being deleted or
// rewritten, marker first, when its collector stopped) or one of unmarked
// (its folder was being uploaded). What the store holds of such a folder
// may be incomplete. A
// marker at the top of the outputs folder leaves nothing out; it is only
// named. One warning names the folders.
func leaveOutUnmarked(items []restoreItem, known Manifest, markers, unmarked []string, log *slog.Logger) []restoreItem {
	if (len(markers) == 0 || len(known) == 0) && len(unmarked) == 0 {
		return items
	}
	stored := make(map[string]bool, len(items))
	for _, it := range items {
		stored[it.rel] = true
	}
	var folders []string
	for rel := range known {
		if slices.Contains(markers, path.Base(rel)) && !stored[rel] {
			folders = append(folders, path.Dir(rel))
		}
	}
	for _, rel := range unmarked {
		if !stored[rel] && !slices.Contains(folders, path.Dir(rel)) {
			folders = append(folders, path.Dir(rel))
		}
	}
	if len(folders) == 0 {
		return items
	}
	slices.Sort(folders)
	kept, left := items[:0], 0
	for _, it := range items {
		if slices.ContainsFunc(folders, func(f string) bool { return f != "." && strings.HasPrefix(it.rel, f+"/") }) {
			left++
			continue
		}
		kept = append(kept, it)
	}
	log.Warn("left out checkpoint folders whose commit marker the run's state records but the store does not hold: they may be incomplete", "folders", folders, "files_left_out", left)
	return kept
}
