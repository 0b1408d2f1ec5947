package logs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Fingerprint and check sizes of a file source.
const (
	headSize  = 256       // bytes of a file's start that, with its inode, identify it
	tailSize  = 32        // bytes before a saved offset checked before trusting it
	blockSize = 128 << 10 // bytes read at a time
)

// FileSource tails the files a glob matches: plain text, CRI or Docker
// JSON lines, detected per file. A file is known by its device, inode and
// a fingerprint of its first bytes, so a renamed file is read to its end
// and not read again, a truncated one (copytruncate) is read again from
// its start, and a new file on a reused inode is a new file.
type FileSource struct {
	name      string
	glob      string
	poll      time.Duration
	lineLimit int
	looked    func(moved bool) // after each look, for tests
}

// NewFileSource tails the files matching glob, looking for new lines and
// files every poll, splitting lines longer than lineLimit.
func NewFileSource(glob string, poll time.Duration, lineLimit int) (*FileSource, error) {
	if _, err := filepath.Match(glob, ""); err != nil {
		return nil, fmt.Errorf("--logs file:%s: not a glob: %v", glob, err)
	}
	h := fnv.New32a()
	h.Write([]byte(glob))
	return &FileSource{name: fmt.Sprintf("file-%08x", h.Sum32()), glob: glob, poll: poll, lineLimit: lineLimit}, nil
}

// Name is "file-" and a hash of the glob: stable while the glob is.
func (s *FileSource) Name() string { return s.name }

// filePosition is a file source's position: a cursor per file.
type filePosition struct {
	Files []fileCursor `json:"files"`
}

// fileCursor is where the source is in one file: the offset after the
// last line passed on, trusted only while the file is the same (device,
// inode, the hash of its first HeadLen bytes) and the bytes before the
// offset are still Tail.
type fileCursor struct {
	Path    string `json:"path"`
	Dev     uint64 `json:"dev"`
	Inode   uint64 `json:"inode"`
	HeadLen int    `json:"headLen"`
	Head    string `json:"head"`
	Offset  int64  `json:"offset"`
	Tail    string `json:"tail"`
	Format  string `json:"format,omitempty"`
}

// tailed is a file being read.
type tailed struct {
	cur       fileCursor
	f         *os.File
	container string
	read      int64  // bytes read; cur.Offset <= read
	pending   []byte // bytes read after cur.Offset that make no record yet
	scanned   int    // bytes of pending made records or held in joined
	before    []byte // the bytes before pending, up to tailSize
	head      []byte // the file's first bytes as read, up to headSize
	joined    map[string][]byte
	mtime     time.Time // the file's at the last look
	gone      bool      // its path leads elsewhere now (renamed, deleted)
	quiet     int       // polls since gone without new bytes
}

// fileRun is one Run of a file source.
type fileRun struct {
	s       *FileSource
	emit    func(Record, Position) error
	files   []*tailed
	saved   []fileCursor // cursors of the position resumed from, not yet matched
	records []Record
	buf     []byte // one block read
}

// Run tails the files until ctx ends, then reads each to its end, passes
// on a partial last line as a line, and returns.
func (s *FileSource) Run(ctx context.Context, from Position, emit func(Record, Position) error) error {
	r, err := s.start(from, emit)
	if err != nil {
		return err
	}
	defer r.close()
	// Looks come every poll while the files move, and back off to
	// idlePolls polls apart while nothing does, so that an idle sidecar
	// rarely wakes.
	wait := s.poll
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		final := ctx.Err() != nil
		moved, err := r.pass(final)
		if err != nil {
			return err
		}
		if s.looked != nil {
			s.looked(moved)
		}
		if final {
			return nil
		}
		if moved {
			wait = s.poll
		} else {
			wait = min(2*wait, idlePolls*s.poll)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// idlePolls is how many polls apart a file source looks while its files
// do not change.
const idlePolls = 4

// start begins a run from the position from: the files of its cursors that
// were renamed are opened; the rest are matched as the first pass finds them.
func (s *FileSource) start(from Position, emit func(Record, Position) error) (*fileRun, error) {
	r := &fileRun{s: s, emit: emit}
	if from != nil {
		var p filePosition
		if err := json.Unmarshal(from, &p); err != nil {
			return nil, fmt.Errorf("saved position: %w", err)
		}
		r.saved = p.Files
	}
	if err := r.resumeRenamed(); err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// close closes the files of the run.
func (r *fileRun) close() {
	for _, t := range r.files {
		t.f.Close()
	}
}

// resumeRenamed opens the files of saved cursors that the glob no longer
// finds (rotated by rename while the collector was down, or rotated before
// and found by an earlier start): they are looked for at the cursor's path,
// then by inode in its folder, and read to their end.
func (r *fileRun) resumeRenamed() error {
	var keep []fileCursor
	for _, c := range r.saved {
		if fi, err := os.Stat(c.Path); err == nil && sameInode(fi, c) {
			if ok, _ := filepath.Match(r.s.glob, c.Path); ok {
				keep = append(keep, c) // the first pass finds it
			} else {
				r.resumeAt(c.Path, fi, c)
			}
			continue
		}
		ents, _ := os.ReadDir(filepath.Dir(c.Path))
		for _, e := range ents {
			p := filepath.Join(filepath.Dir(c.Path), e.Name())
			fi, err := os.Stat(p)
			if err != nil || !fi.Mode().IsRegular() || !sameInode(fi, c) {
				continue
			}
			r.resumeAt(p, fi, c)
			break
		}
	}
	r.saved = keep
	return nil
}

// resumeAt reads the renamed file at p from cursor c to its end. The inode
// alone does not say it is c's file: a file created since (a
// copytruncate's copy) may have the inode of one deleted; that one is not
// in the glob, and not read.
func (r *fileRun) resumeAt(p string, fi os.FileInfo, c fileCursor) {
	if !renamedFrom(p, c) {
		return
	}
	if t := r.open(p, fi, &[]fileCursor{c}); t != nil {
		t.gone = true
	}
}

// renamedFrom tells whether the file at p is the one cursor c was saved
// for: its first bytes and the bytes before c's offset are c's.
func renamedFrom(p string, c fileCursor) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	return (&tailed{f: f}).matches(c)
}

func inode(fi os.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino
	}
	return 0, 0
}

func sameInode(fi os.FileInfo, c fileCursor) bool {
	dev, ino := inode(fi)
	return dev == c.Dev && ino == c.Inode
}

// pass finds new and rotated files, and reads every file to its end.
func (r *fileRun) pass(final bool) (moved bool, err error) {
	matches, _ := filepath.Glob(r.s.glob)
	sort.Strings(matches)
	for _, p := range matches {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		known := false
		for _, t := range r.files {
			if tfi, err := t.f.Stat(); err == nil && os.SameFile(tfi, fi) && linked(tfi) {
				moved = moved || t.gone || t.cur.Path != p
				t.cur.Path, t.gone, known = p, false, true
				break
			}
		}
		if !known && r.open(p, fi, &r.saved) != nil {
			moved = true
		}
	}
	for _, t := range r.files {
		wasGone := t.gone
		if fi, err := os.Stat(t.cur.Path); err != nil || !sameInode(fi, t.cur) {
			t.gone = true
		} else if tfi, err := t.f.Stat(); err == nil && !linked(tfi) {
			t.gone = true // deleted; a new file may have its inode
		}
		moved = moved || t.gone != wasGone
	}
	var left []*tailed
	for _, t := range r.files {
		grew, err := r.readAll(t, final)
		if err != nil {
			return moved, err
		}
		moved = moved || grew
		if t.gone && !grew {
			t.quiet++
		}
		if final || (t.gone && t.quiet >= 2) {
			// The run ends, or a renamed file has stopped growing: its
			// partial last line is a line now.
			if err := r.flush(t); err != nil {
				return moved, err
			}
		}
		if t.gone && t.quiet >= 2 {
			t.f.Close()
			continue
		}
		left = append(left, t)
	}
	r.files = left
	return moved, r.send()
}

func linked(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return !ok || st.Nlink > 0
}

// open starts tailing the file p, from the cursor of it among cands when
// one still fits (it is then taken out of cands), else from its start.
func (r *fileRun) open(p string, fi os.FileInfo, cands *[]fileCursor) *tailed {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	dev, ino := inode(fi)
	t := &tailed{f: f, cur: fileCursor{Path: p, Dev: dev, Inode: ino}, joined: map[string][]byte{}}
	for i, c := range *cands {
		if c.Dev != dev || c.Inode != ino {
			continue
		}
		// The same inode: the same file only if its first bytes and the
		// bytes before the offset are still those saved (else a new file
		// took a deleted one's inode, or the file was truncated).
		*cands = append((*cands)[:i:i], (*cands)[i+1:]...)
		if t.matches(c) {
			t.cur = c
			t.cur.Path = p
			t.read = c.Offset
			t.before, _ = hex.DecodeString(c.Tail)
		}
		break
	}
	r.files = append(r.files, t)
	return t
}

// matches tells whether the open file is the one c describes, up to c's
// offset: the same first bytes and the same bytes before the offset.
func (t *tailed) matches(c fileCursor) bool {
	if c.HeadLen > 0 {
		head := make([]byte, c.HeadLen)
		if _, err := t.f.ReadAt(head, 0); err != nil || hashHex(head) != c.Head {
			return false
		}
	}
	return t.tailMatches(c.Offset, c.Tail)
}

func (t *tailed) tailMatches(offset int64, tail string) bool {
	n := min(offset, tailSize)
	if n == 0 {
		return true
	}
	b := make([]byte, n)
	if _, err := t.f.ReadAt(b, offset-n); err != nil {
		return false
	}
	return hex.EncodeToString(b) == tail
}

// readMatches tells whether the bytes before what was read of the file,
// up to tailSize, are still those read: also those of a partial line read
// after the cursor's offset, which a truncated file regrown past them
// would otherwise have joined to its new bytes.
func (t *tailed) readMatches() bool {
	read := make([]byte, 0, tailSize)
	if n := tailSize - len(t.pending); n > 0 {
		read = append(read, t.before[max(0, len(t.before)-n):]...)
	}
	read = append(read, t.pending[max(0, len(t.pending)-tailSize):]...)
	if len(read) == 0 {
		return true
	}
	b := make([]byte, len(read))
	if _, err := t.f.ReadAt(b, t.read-int64(len(b))); err != nil {
		return false
	}
	return bytes.Equal(b, read)
}

func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// readAll reads the file from where it is to its end, and reports whether
// it grew. A file shorter than what was read, or whose bytes before what
// was read changed, was truncated (copytruncate): it is read from its
// start. Those bytes are checked when the file grew, and when it is as
// long as what was read but written since (its mtime), gone, or read for
// the last time: a file truncated and written again to the same length.
func (r *fileRun) readAll(t *tailed, final bool) (bool, error) {
	fi, err := t.f.Stat()
	if err != nil {
		return false, nil
	}
	check := fi.Size() > t.read ||
		fi.Size() == t.read && t.read > 0 && (final || t.gone || !fi.ModTime().Equal(t.mtime))
	t.mtime = fi.ModTime()
	if fi.Size() < t.read || check && !t.readMatches() {
		t.cur.Offset, t.cur.HeadLen, t.cur.Head, t.cur.Tail, t.read = 0, 0, "", "", 0
		t.pending, t.scanned, t.before, t.head, t.joined = nil, 0, nil, nil, map[string][]byte{}
	}
	grew := false
	if fi.Size() == t.read {
		return false, nil
	}
	if r.buf == nil {
		r.buf = make([]byte, blockSize)
	}
	buf := r.buf
	for {
		n, err := t.f.ReadAt(buf, t.read)
		if n > 0 {
			grew = true
			if t.read < headSize && int64(len(t.head)) == t.read {
				t.head = append(t.head, buf[:min(int64(n), headSize-t.read)]...)
			}
			t.read += int64(n)
			t.pending = append(t.pending, buf[:n]...)
			if err := r.lines(t, false); err != nil {
				return grew, err
			}
			if err := r.send(); err != nil {
				return grew, err
			}
		}
		if n < len(buf) || errors.Is(err, io.EOF) {
			return grew, nil
		}
		if err != nil {
			return grew, fmt.Errorf("read %s: %w", t.cur.Path, err)
		}
	}
}

// lines turns the complete lines of t.pending not scanned yet into records,
// and moves the cursor past the last one that made a whole record. The
// pieces of a line the runtime split stay in pending, already held in
// joined, until their line ends. With flush, what is left (a partial last
// line) is a record too.
func (r *fileRun) lines(t *tailed, flush bool) error {
	start := t.read - int64(len(t.pending)) // file offset of pending[0]
	safe := -1                              // bytes of pending the cursor may pass
	i := t.scanned
	for {
		j := bytes.IndexByte(t.pending[i:], '\n')
		var line []byte
		if j < 0 {
			if !flush || i == len(t.pending) {
				break
			}
			line = t.pending[i:]
			j = len(line)
		} else {
			line = t.pending[i : i+j]
		}
		last := j == len(t.pending)-i // a partial line, flushed
		if t.cur.Format == "" {
			t.cur.Format = detectFormat(line)
			t.container = containerOf(t.cur.Path, t.cur.Format)
		}
		if t.container == "" {
			t.container = containerOf(t.cur.Path, t.cur.Format)
		}
		r.record(t, line, last)
		i += j
		if !last {
			i++
		}
		if len(t.joined) == 0 {
			safe = i
		}
		if i >= len(t.pending) {
			break
		}
	}
	t.scanned = i
	if safe > 0 {
		// The fingerprint and the tail come from the bytes read, not from
		// the file again: it may have been truncated and rewritten since.
		t.cur.Offset = start + int64(safe)
		t.before = append(t.before, t.pending[:safe]...)
		t.before = append(t.before[:0], t.before[max(0, len(t.before)-tailSize):]...)
		t.cur.Tail = hex.EncodeToString(t.before)
		t.pending = append(t.pending[:0], t.pending[safe:]...)
		t.scanned -= safe
		if t.cur.HeadLen < len(t.head) {
			t.cur.HeadLen, t.cur.Head = len(t.head), hashHex(t.head)
		}
	}
	return nil
}

// record parses one physical line and queues the records it makes.
func (r *fileRun) record(t *tailed, line []byte, unterminated bool) {
	var p physical
	ok := false
	switch t.cur.Format {
	case formatCRI:
		p, ok = parseCRI(line)
	case formatDocker:
		p, ok = parseDocker(line)
	}
	if !ok {
		p = physical{time: time.Now(), stream: "stdout", text: line}
	}
	if p.time.IsZero() {
		p.time = time.Now()
	}
	text := p.text
	if prev := t.joined[p.stream]; prev != nil {
		text = append(prev, text...)
	}
	if p.partial && !unterminated {
		// A piece of a line the runtime split: held until its end, but
		// not beyond the line limit.
		for len(text) > r.s.lineLimit {
			r.queue(t, p, text[:r.s.lineLimit], true)
			text = text[r.s.lineLimit:]
		}
		t.joined[p.stream] = append([]byte(nil), text...)
		return
	}
	delete(t.joined, p.stream)
	for len(text) > r.s.lineLimit {
		r.queue(t, p, text[:r.s.lineLimit], true)
		text = text[r.s.lineLimit:]
	}
	r.queue(t, p, text, unterminated)
}

func (r *fileRun) queue(t *tailed, p physical, text []byte, continued bool) {
	r.records = append(r.records, Record{Time: p.time, Container: t.container, Stream: p.stream,
		Value: bytes.Clone(text), Continued: continued})
}

// flush makes the partial last line of t, and the pieces of a split line
// the runtime never finished, records.
func (r *fileRun) flush(t *tailed) error {
	if err := r.lines(t, true); err != nil {
		return err
	}
	for stream, text := range t.joined {
		r.queue(t, physical{time: time.Now(), stream: stream}, text, true)
	}
	t.joined = map[string][]byte{}
	if len(t.pending) > 0 {
		t.before = append(t.before, t.pending...)
		t.before = append(t.before[:0], t.before[max(0, len(t.before)-tailSize):]...)
		t.cur.Tail = hex.EncodeToString(t.before)
		t.pending, t.scanned = t.pending[:0], 0
	}
	t.cur.Offset = t.read
	return nil
}

// send passes the queued records on, the last with the position of every
// file.
func (r *fileRun) send() error {
	if len(r.records) == 0 {
		return nil
	}
	p := filePosition{Files: make([]fileCursor, 0, len(r.files)+len(r.saved))}
	for _, t := range r.files {
		p.Files = append(p.Files, t.cur)
	}
	p.Files = append(p.Files, r.saved...)
	pos, err := json.Marshal(p)
	if err != nil {
		return err
	}
	for i := range r.records {
		var at Position
		if i == len(r.records)-1 {
			at = pos
		}
		if err := r.emit(r.records[i], at); err != nil {
			return err
		}
	}
	r.records = r.records[:0]
	return nil
}
