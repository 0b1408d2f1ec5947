package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/klauspost/compress/gzip"
)

// SealAt says when a Writer's open chunk is due to be sealed: at Bytes
// (compressed, on disk) or once Age old, whichever comes first; a zero
// field never.
type SealAt struct {
	Bytes int64
	Age   time.Duration
}

// Gzip levels of a Writer.
const (
	BestSpeed          = gzip.BestSpeed
	DefaultCompression = gzip.DefaultCompression
)

// compressEvery is how many bytes of records a Writer buffers before it
// compresses them.
const compressEvery = 64 << 10

var seriesPattern = regexp.MustCompile(`^[a-z0-9-]{1,64}$`)

// Writer writes the chunks of one series: gzip JSON Lines, one chunk open
// at a time. It is not safe for concurrent use.
type Writer struct {
	p      *Producer
	series string
	level  int
	at     SealAt

	f      *os.File // the open chunk; nil when none is
	name   string
	size   int64 // bytes written to f
	opened time.Time
	gz     *gzip.Writer
	buf    []byte // records not yet compressed
}

// Writer returns the writer of the series (1 to 64 of a-z, 0-9, '-') in
// the producer's folder, at the gzip level given.
func (p *Producer) Writer(series string, level int, at SealAt) (*Writer, error) {
	if !seriesPattern.MatchString(series) {
		return nil, fmt.Errorf("spool: series name %q: want 1 to 64 of a-z, 0-9, '-'", series)
	}
	return &Writer{p: p, series: series, level: level, at: at}, nil
}

// Open starts chunk seq of the attempt, empty: a chunk of that name left
// open by an earlier run is replaced.
func (w *Writer) Open(attempt int, seq uint64, now time.Time) error {
	if w.f != nil {
		return fmt.Errorf("spool: %s is open already", w.name)
	}
	name := ChunkName(w.series, attempt, seq)
	f, err := os.Create(w.p.OpenPath(name))
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	w.f, w.name, w.size, w.opened, w.buf = f, name, 0, now, w.buf[:0]
	if w.gz == nil {
		if w.gz, err = gzip.NewWriterLevel((*chunkFile)(w), w.level); err != nil {
			w.Abort()
			return err
		}
	} else {
		w.gz.Reset((*chunkFile)(w))
	}
	return nil
}

// chunkFile is the open chunk's file, as the gzip stream writes it.
type chunkFile Writer

func (c *chunkFile) Write(b []byte) (int, error) {
	n, err := c.f.Write(b)
	c.size += int64(n)
	return n, err
}

// IsOpen tells whether a chunk is open.
func (w *Writer) IsOpen() bool { return w.f != nil }

// Name is the open (or last) chunk's name in its folder.
func (w *Writer) Name() string { return w.name }

// Size is how many bytes of the open chunk are in its file.
func (w *Writer) Size() int64 { return w.size }

// Due tells whether the open chunk is big or old enough to be sealed, or
// was open at a Rush.
func (w *Writer) Due(now time.Time) bool {
	return w.f != nil && ((w.at.Bytes > 0 && w.size >= w.at.Bytes) || (w.at.Age > 0 && now.Sub(w.opened) >= w.at.Age) || w.p.s.rushed(w.opened))
}

// Append adds records (whole lines) to the open chunk, buffered; it says
// when enough are buffered to Compress them.
func (w *Writer) Append(records []byte) bool {
	w.buf = append(w.buf, records...)
	return len(w.buf) >= compressEvery
}

// Compress writes the buffered records into the gzip stream.
func (w *Writer) Compress() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.gz.Write(w.buf)
	w.buf = w.buf[:0]
	return err
}

// Flush writes every record appended so far through to the chunk's file:
// a collector killed after it leaves them readable (SealWholeLines).
func (w *Writer) Flush() error {
	if err := w.Compress(); err != nil {
		return err
	}
	return w.gz.Flush()
}

// Finish ends the chunk's gzip stream and returns its final size; the
// producer records what the chunk holds, then calls Seal.
func (w *Writer) Finish() (int64, error) {
	if err := w.Compress(); err != nil {
		return w.size, err
	}
	return w.size, w.gz.Close()
}

// Seal makes the finished chunk durable, moves it into the producer's
// folder and hands it to the spool's uploader; the writer has no open
// chunk after. An error with the chunk in the folder all the same (only
// the folder's fsync failed) leaves it to be uploaded: SealedPath tells.
func (w *Writer) Seal() error {
	f := w.f
	w.f = nil
	moved, err := w.p.seal(f, w.name)
	if !moved {
		os.Remove(f.Name())
	}
	return err
}

// Abort drops the open chunk.
func (w *Writer) Abort() error {
	if w.f == nil {
		return nil
	}
	f := w.f
	w.f, w.buf = nil, w.buf[:0]
	f.Close()
	if err := os.Remove(f.Name()); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("spool: %w", err)
	}
	return nil
}

// seal syncs the open chunk f, renames it into the folder and queues it;
// it says whether the chunk is in the folder.
func (p *Producer) seal(f *os.File, name string) (bool, error) {
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p.SealedPath(name))
	}
	if err != nil {
		return false, fmt.Errorf("spool: seal %s: %w", name, err)
	}
	p.s.sealed(p.folder + "/" + name)
	if err := syncDir(filepath.Dir(p.SealedPath(name))); err != nil {
		return true, fmt.Errorf("spool: seal %s: %w", name, err)
	}
	return true, nil
}

// SealWholeLines seals the open chunk name that an earlier run left, a
// gzip stream of lines that a kill may have cut anywhere: the chunk is
// rewritten with the whole lines it holds (what a decompressor reads up to
// the cut is a prefix of what was written), and sealed; a chunk without one
// is removed. It returns how many lines were kept. The chunk is read into
// memory: chunks are a few MiB compressed.
func (p *Producer) SealWholeLines(name string) (int, error) {
	data, err := ReadChunk(p.OpenPath(name))
	if err != nil {
		return 0, fmt.Errorf("spool: chunk %s: %w", name, err)
	}
	data = data[:bytes.LastIndexByte(data, '\n')+1]
	if len(data) == 0 {
		return 0, p.Discard(name)
	}
	f, err := os.Create(p.OpenPath(name))
	if err != nil {
		return 0, fmt.Errorf("spool: %w", err)
	}
	gz := gzip.NewWriter(f)
	_, err = gz.Write(data)
	if err == nil {
		err = gz.Close()
	}
	if err != nil {
		f.Close()
		return 0, fmt.Errorf("spool: chunk %s: %w", name, err)
	}
	_, err = p.seal(f, name)
	return bytes.Count(data, []byte{'\n'}), err
}

// EncodeChunk returns a whole chunk as the spool stores it: records (JSON
// Lines) gzip'd. Readers of a run's chunks take it for a sealed one.
func EncodeChunk(records []byte) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(records) // a bytes.Buffer does not fail
	zw.Close()
	return b.Bytes()
}

// ReadChunk reads what a gzip chunk holds, up to where a kill may have cut
// it short (an open chunk); a chunk with nothing flushed holds nothing.
func ReadChunk(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // nothing was flushed, not even the header
		}
		return nil, err
	}
	data, err := io.ReadAll(zr)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return data, err
	}
	return data, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
