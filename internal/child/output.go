package child

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"slices"
	stdsync "sync"
	"sync/atomic"
	"time"
)

// Line is one line of the command's output, without its newline.
type Line struct {
	Stream string    // "stdout" or "stderr"
	Time   time.Time // when the block that completed it was read
	// Text is valid only during the call that is given the line.
	Text []byte
	// Partial is set on the last line of a stream that ended without a
	// newline, and on a piece of a line longer than the line limit.
	Partial bool
}

// CaptureConfig sizes a Capture.
type CaptureConfig struct {
	// Memory is how many bytes of output wait in memory for the reader;
	// beyond that they wait in the spill file.
	Memory int
	// SpillPath is the spill file (created when first needed, removed by
	// Close); empty keeps no spill, and what does not fit in Memory is
	// dropped.
	SpillPath string
	// SpillLimit is the spill file's size at most; output beyond it is
	// dropped.
	SpillLimit int64
	// MaxLine splits longer lines into pieces marked Partial.
	MaxLine int
}

// DefaultCaptureMemory is the memory a Capture holds when its config
// leaves Memory at zero.
const DefaultCaptureMemory = 4 << 20

// Capture is the command's output as log collection takes it: the blocks
// its Outputs read, both streams in the order they were read, each with the
// time it was read. It never slows the command down. The reader splits the
// blocks into lines at its own pace, behind the command; blocks wait in
// memory up to a limit, then in a spill file on disk, the way a log
// shipper's disk buffer works, and only beyond the spill's limit (a reader
// that stopped, a full disk) is output passed through without being
// captured, its lines counted in Dropped.
//
// The spill is written by a goroutine of its own, not by the Outputs: the
// thread that passes the command's output through only queues what it read,
// so that it drains the command's pipe as fast as `cat` would.
type Capture struct {
	cfg   CaptureConfig
	ready chan struct{} // a block was added or an output closed

	// Under mu: the blocks, oldest first, are those of the spill file
	// (spillR to spillW), then the one being spilled, then the queue.
	mu          stdsync.Mutex
	spillWanted *stdsync.Cond // the queue is over Memory, or every output closed
	roomMade    *stdsync.Cond // the spill writer moved a block out of memory, or failed
	streams     []string      // by index, as the spill file records them
	queue       []block       // in memory, oldest first from head
	head        int
	queued      int // bytes the queue holds (buffer capacities)
	spilling    bool
	spillFull   bool // the queue's oldest block does not fit in the spill until the reader reads
	inFlight    bool // the spill writer is writing the queue's oldest block
	spill       *os.File
	spillW      int64 // bytes of the spill file that hold blocks; reset once all are read
	spillR      int64 // bytes of it read
	spillLines  int64 // newlines in the spill not read yet
	open        int   // outputs not closed
	spillErr    error // the first spill failure, for Err
	// gapNext, by stream: output of the stream was dropped after its last
	// queued block, so the next one it queues follows a gap.
	gapNext []gap

	partial [][]byte // by stream: the line the reader has begun; the reader's alone
	// gapRead, by stream: the reader dropped the spill's blocks (it could
	// not read them back): the stream's next block follows a gap. skipping,
	// by stream: the reader is dropping the rest of a line whose start was
	// dropped. The reader's alone.
	gapRead  []bool
	skipping []bool

	dropped atomic.Int64
}

// block is what one read of an Output got.
type block struct {
	stream int
	time   time.Time
	data   []byte
	pooled bool // data is a buffer of bufPool, returned after use
	// gap says output of the stream was dropped right before this block:
	// the line the reader had begun ended in what was dropped (its newline
	// counted there), and is not passed on glued to this block's; when
	// what was dropped ended mid-line, the rest of that line, up to this
	// block's first newline, is dropped too (and counted).
	gap gap
}

// gap is what was dropped before a block: nothing, whole lines, or output
// that ended mid-line.
type gap uint8

const (
	noGap gap = iota
	gapAtLineStart
	gapMidLine
)

// gapAfter is the gap that dropping data leaves.
func gapAfter(data []byte) gap {
	if len(data) > 0 && data[len(data)-1] != '\n' {
		return gapMidLine
	}
	return gapAtLineStart
}

// dropBefore notes that output of stream was dropped ahead of the blocks
// still queued: the next queued block of the stream follows a gap, or, if
// none is queued, the next one it queues. c.mu is held.
func (c *Capture) dropBefore(stream int, g gap) {
	for i := c.head; i < len(c.queue); i++ {
		if c.queue[i].stream == stream {
			c.queue[i].gap = g
			return
		}
	}
	c.gapNext[stream] = g
}

// NewCapture returns an empty capture; add its Outputs before the command
// starts.
func NewCapture(cfg CaptureConfig) *Capture {
	if cfg.Memory <= 0 {
		cfg.Memory = DefaultCaptureMemory
	}
	if cfg.MaxLine <= 0 {
		cfg.MaxLine = 256 << 10
	}
	if cfg.SpillPath != "" {
		_ = os.Remove(cfg.SpillPath) // a killed collector's: its lines are gone with its process
	}
	c := &Capture{cfg: cfg, ready: make(chan struct{}, 1)}
	c.spillWanted = stdsync.NewCond(&c.mu)
	c.roomMade = stdsync.NewCond(&c.mu)
	return c
}

// Output returns the command's stream named stream ("stdout", "stderr"):
// what the command writes to it goes to pass unchanged, then to the
// capture.
func (c *Capture) Output(stream string, pass io.Writer) *Output {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streams = append(c.streams, stream)
	c.gapNext = append(c.gapNext, noGap)
	c.gapRead = append(c.gapRead, false)
	c.skipping = append(c.skipping, false)
	c.open++
	return &Output{c: c, stream: len(c.streams) - 1, pass: pass}
}

// Dropped counts the lines the capture could not hold (they were passed
// through all the same).
func (c *Capture) Dropped() int64 { return c.dropped.Load() }

// Err is the first failure of the spill file, if any: output that found it
// failing was dropped.
func (c *Capture) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.spillErr
}

// memoryCap is how far the queue may grow past Memory while the spill
// writer catches up: 16 reads of the pipe.
func (c *Capture) memoryCap() int { return c.cfg.Memory + 16*bufSize }

// add queues a block, and wakes the spill writer when the queue is over
// Memory. Without a spill, a block that finds Memory full is dropped.
// With one, a block that finds memoryCap reached waits for the spill
// writer to make room (a command that prints faster than the disk takes
// it), and is dropped only when the spill is full or failing.
func (c *Capture) add(b block) {
	c.mu.Lock()
	for {
		if c.queued == 0 || c.queued+cap(b.data) <= c.cfg.Memory {
			break
		}
		if c.cfg.SpillPath == "" || c.spillErr != nil || c.spillFull {
			c.gapNext[b.stream] = gapAfter(b.data) // the newest block: nothing of the stream queued after it
			c.mu.Unlock()
			c.dropped.Add(int64(bytes.Count(b.data, newline)))
			b.release()
			return
		}
		if c.queued+cap(b.data) <= c.memoryCap() {
			break
		}
		c.startSpilling()
		c.roomMade.Wait()
	}
	b.gap, c.gapNext[b.stream] = c.gapNext[b.stream], noGap
	c.queue = append(c.queue, b)
	c.queued += cap(b.data)
	if c.queued > c.cfg.Memory {
		c.startSpilling()
	}
	c.mu.Unlock()
	select {
	case c.ready <- struct{}{}:
	default:
	}
}

// startSpilling wakes the spill writer, starting it the first time; c.mu
// is held and the capture has a spill.
func (c *Capture) startSpilling() {
	if !c.spilling {
		c.spilling = true
		go c.spillOut()
	}
	c.spillWanted.Signal()
}

var newline = []byte{'\n'}

// spillHeader is a spilled block's header: stream (1 byte), time (Unix
// nanoseconds, 8 bytes), length (4 bytes).
const spillHeader = 13

// A spilled block's stream byte holds its gap in its two high bits
// (streams are numbered from 0: there are two).
const spillStreamMask = 0x3f

// spillOut is the spill writer: while the queue is over Memory, it moves
// the queue's oldest block to the end of the spill file. It ends once
// every output is closed.
func (c *Capture) spillOut() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for !(c.queued > c.cfg.Memory && c.head < len(c.queue)) && c.open > 0 {
			c.spillWanted.Wait()
		}
		if !(c.queued > c.cfg.Memory && c.head < len(c.queue)) {
			return // every output closed: the reader takes the rest from memory
		}
		b := c.queue[c.head]
		if c.spillW+spillHeader+int64(len(b.data)) > c.cfg.SpillLimit || c.spillErr != nil {
			// No room: the block waits in memory, and add drops what
			// finds memory full, until the reader reads from the spill.
			c.spillFull = true
			c.roomMade.Broadcast()
			c.spillWanted.Wait()
			continue
		}
		c.inFlight = true
		off := c.spillW
		c.mu.Unlock()
		err := c.writeSpilled(b, off)
		c.mu.Lock()
		c.inFlight = false
		c.queue[c.head] = block{}
		c.head++
		c.queued -= cap(b.data)
		if c.head == len(c.queue) {
			c.queue, c.head = c.queue[:0], 0
		}
		if err != nil {
			c.spillFailed(err)
			c.dropped.Add(int64(bytes.Count(b.data, newline)))
			c.dropBefore(b.stream, gapAfter(b.data))
		} else {
			c.spillW += spillHeader + int64(len(b.data))
			c.spillLines += int64(bytes.Count(b.data, newline))
		}
		b.release()
		c.roomMade.Broadcast()
		select {
		case c.ready <- struct{}{}:
		default:
		}
	}
}

// writeSpilled writes b at off of the spill file, which it creates first
// if needed. Only the spill writer calls it, outside c.mu: the reader
// reads only what lies before spillW.
func (c *Capture) writeSpilled(b block, off int64) error {
	if c.spill == nil {
		f, err := os.OpenFile(c.cfg.SpillPath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.spill = f
		c.mu.Unlock()
	}
	var h [spillHeader]byte
	h[0] = byte(b.stream) | byte(b.gap)<<6
	binary.LittleEndian.PutUint64(h[1:], uint64(b.time.UnixNano()))
	binary.LittleEndian.PutUint32(h[9:], uint32(len(b.data)))
	if _, err := c.spill.WriteAt(h[:], off); err != nil {
		return err
	}
	_, err := c.spill.WriteAt(b.data, off+spillHeader)
	return err
}

func (c *Capture) spillFailed(err error) {
	if c.spillErr == nil {
		c.spillErr = fmt.Errorf("capture spill file: %w", err)
	}
}

// next returns the oldest block, waiting for one; false once every output
// is closed and everything was read.
func (c *Capture) next() (block, bool) {
	for {
		c.mu.Lock()
		if c.spillR < c.spillW {
			// The spill is read outside the lock: only this reader reads it,
			// and what lies before spillW is not written again until it is
			// all read.
			f, off := c.spill, c.spillR
			c.mu.Unlock()
			b, err := readSpilled(f, off)
			c.mu.Lock()
			if err != nil {
				c.spillFailed(err)
				c.dropped.Add(c.spillLines)
				c.spillR = c.spillW
				for i := range c.streams {
					c.gapRead[i] = true // every spilled block went
				}
			} else {
				c.spillR += spillHeader + int64(len(b.data))
				c.spillLines -= int64(bytes.Count(b.data, newline))
			}
			if c.spillR == c.spillW && !c.inFlight {
				// All read: the spill writer starts again at the
				// beginning of the file (overwriting costs less than
				// growing it).
				c.spillR, c.spillW, c.spillLines = 0, 0, 0
			}
			c.spillFull = false
			c.spillWanted.Signal()
			c.mu.Unlock()
			if err != nil {
				continue
			}
			return b, true
		}
		if c.head < len(c.queue) && !c.inFlight {
			b := c.queue[c.head]
			c.queue[c.head] = block{}
			c.head++
			if c.head == len(c.queue) {
				c.queue, c.head = c.queue[:0], 0
			}
			c.queued -= cap(b.data)
			c.mu.Unlock()
			return b, true
		}
		if c.open == 0 && c.head == len(c.queue) && !c.inFlight {
			c.mu.Unlock()
			return block{}, false
		}
		c.mu.Unlock()
		<-c.ready
	}
}

// readSpilled reads the block at off of the spill file.
func readSpilled(f *os.File, off int64) (block, error) {
	var h [spillHeader]byte
	if _, err := f.ReadAt(h[:], off); err != nil {
		return block{}, err
	}
	n := int(binary.LittleEndian.Uint32(h[9:]))
	b := block{stream: int(h[0] & spillStreamMask), gap: gap(h[0] >> 6), time: time.Unix(0, int64(binary.LittleEndian.Uint64(h[1:])))}
	if n <= bufSize {
		b.data, b.pooled = getBuf()[:n], true
	} else {
		b.data = make([]byte, n)
	}
	if _, err := f.ReadAt(b.data, off+spillHeader); err != nil {
		b.release()
		return block{}, err
	}
	return b, nil
}

// Read gives fn the command's lines, each stream's in order, until every
// Output is closed and everything captured was read; a stream's partial
// last line comes last, marked Partial. It stops at fn's first error.
//
// When until is set and reports true between two blocks, Read returns
// with done false: a later Read goes on from there. Only one Read at a
// time.
func (c *Capture) Read(fn func(Line) error, until func() bool) (done bool, err error) {
	for {
		if until != nil && until() {
			return false, nil
		}
		b, ok := c.next()
		if !ok {
			break
		}
		for len(c.partial) <= b.stream {
			c.partial = append(c.partial, nil)
		}
		if b.gap != noGap || c.gapRead[b.stream] {
			// The line begun ended in output that was dropped (and is
			// counted there); after output dropped mid-line (or whose end
			// is not known), so does the start of this block's first line.
			c.partial[b.stream] = c.partial[b.stream][:0]
			c.skipping[b.stream] = b.gap == gapMidLine || c.gapRead[b.stream]
			c.gapRead[b.stream] = false
		}
		lines := b // b itself goes back to the pool whole
		if c.skipping[b.stream] {
			i := bytes.IndexByte(b.data, '\n')
			if i < 0 {
				b.release()
				continue // all of it the rest of a dropped line
			}
			c.skipping[b.stream] = false
			c.dropped.Add(1)
			lines.data = b.data[i+1:]
		}
		c.partial[b.stream], err = c.split(lines, c.partial[b.stream], fn)
		b.release()
		if err != nil {
			return false, err
		}
	}
	c.mu.Lock()
	streams, gaps := c.streams, slices.Clone(c.gapNext)
	if c.spill != nil {
		c.spill.Close()
		_ = os.Remove(c.cfg.SpillPath)
		c.spill = nil
	}
	c.mu.Unlock()
	for i, p := range c.partial {
		if gaps[i] != noGap || c.gapRead[i] {
			c.partial[i] = nil // its end was dropped: counted there
			continue
		}
		if len(p) > 0 {
			c.partial[i] = nil
			if err := fn(Line{Stream: streams[i], Time: time.Now(), Text: p, Partial: true}); err != nil {
				return false, err
			}
		}
	}
	return true, nil
}

// Ended tells whether every Output is closed: the command is gone, and
// what is left to read is all there is.
func (c *Capture) Ended() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open == 0
}

// FarBehind tells whether the reader is far behind the command: half the
// room the capture has (memory and spill) holds output not read yet.
func (c *Capture) FarBehind() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	room := int64(c.cfg.Memory)
	if c.cfg.SpillPath != "" {
		room += c.cfg.SpillLimit
	}
	return int64(c.queued)+c.spillW-c.spillR > room/2
}

// split gives fn the lines b completes, after the stream's partial line,
// and returns the new partial line.
func (c *Capture) split(b block, partial []byte, fn func(Line) error) ([]byte, error) {
	c.mu.Lock()
	stream := c.streams[b.stream]
	c.mu.Unlock()
	max := c.cfg.MaxLine
	data := b.data
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			partial = append(partial, data...)
			for len(partial) >= max {
				if err := fn(Line{Stream: stream, Time: b.time, Text: partial[:max:max], Partial: true}); err != nil {
					return partial, err
				}
				partial = append(partial[:0], partial[max:]...)
			}
			break
		}
		text := data[:i]
		data = data[i+1:]
		if len(partial) > 0 {
			partial = append(partial, text...)
			text = partial
		}
		for len(text) > max {
			if err := fn(Line{Stream: stream, Time: b.time, Text: text[:max:max], Partial: true}); err != nil {
				return partial, err
			}
			text = text[max:]
		}
		if err := fn(Line{Stream: stream, Time: b.time, Text: text}); err != nil {
			return partial, err
		}
		partial = partial[:0]
	}
	return partial, nil
}

// Output is one of the command's streams: everything written to it goes to
// its pass-through writer unchanged, then to its Capture.
type Output struct {
	c      *Capture
	stream int
	pass   io.Writer
	closed atomic.Bool
}

// Write passes p through, then captures a copy of it.
func (o *Output) Write(p []byte) (int, error) {
	n, err := o.pass.Write(p)
	if len(p) > 0 && !o.closed.Load() {
		o.c.add(block{stream: o.stream, time: time.Now(), data: bytes.Clone(p)})
	}
	return n, err
}

// ReadFrom reads the command's pipe to its end (or the pass-through's
// first error): each read is passed through, then handed to the capture
// without a copy.
func (o *Output) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	buf := getBuf()
	defer func() { putBuf(buf) }()
	for {
		n, err := r.Read(buf[:bufSize])
		if n > 0 {
			total += int64(n)
			// A pass-through that fails (a closed pipe: `collector --
			// job | head`) ends the stream, as the pipe would have ended
			// it for the command; what it wrote is still captured.
			_, werr := o.pass.Write(buf[:n])
			if werr != nil {
				err = werr
			}
			if !o.closed.Load() {
				if n < bufSize/8 {
					// A small read keeps the buffer: its bytes are copied.
					o.c.add(block{stream: o.stream, time: time.Now(), data: bytes.Clone(buf[:n])})
				} else {
					o.c.add(block{stream: o.stream, time: time.Now(), data: buf[:n], pooled: true})
					buf = getBuf()
				}
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Close ends the stream's capture (the command's output was read to its
// end); writes after Close are passed through only.
func (o *Output) Close() {
	if o.closed.Swap(true) {
		return
	}
	o.c.mu.Lock()
	o.c.open--
	o.c.spillWanted.Broadcast()
	o.c.mu.Unlock()
	select {
	case o.c.ready <- struct{}{}:
	default:
	}
}

// bufSize is the size of a read of the command's pipe (which Command makes
// 1 MiB large where the system allows).
const bufSize = 256 << 10

var bufPool = stdsync.Pool{New: func() any { return make([]byte, bufSize) }}

func getBuf() []byte { return bufPool.Get().([]byte)[:bufSize] }

func putBuf(b []byte) { bufPool.Put(b[:cap(b)]) }

func (b *block) release() {
	if b.pooled {
		putBuf(b.data)
		b.data, b.pooled = nil, false
	}
}
