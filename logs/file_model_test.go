package logs

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The file source against a model: a seeded random sequence of what
// writers and log rotation do to a folder of logs (appends with and without
// a trailing newline, of plain, CRI or Docker json-file logs by seed, rename
// rotation, copytruncate, deletes, a new file on a deleted one's inode),
// and of collector kills and restarts, checked
// against a model of the files: every complete line is stored exactly once
// and in order per file. Lines that no collector could have read (written,
// then truncated or deleted while none was reading) may be missing, never
// doubled or out of order. The source is driven pass by pass, as its Run
// loop drives it, without a clock.
//
// go test -run TestFileSourceModel ./logs/ runs modelSeeds seeds;
// scripts/fuzz.sh runs more (-model.seeds, -model.seed to replay one).

var (
	modelSeeds = flag.Int("model.seeds", 40, "seeds of TestFileSourceModel")
	modelSeed  = flag.Uint64("model.seed", 0, "run TestFileSourceModel with this seed only")
	modelSteps = flag.Int("model.steps", 120, "steps of each TestFileSourceModel seed")
)

func TestFileSourceModel(t *testing.T) {
	if *modelSeed != 0 {
		runModel(t, *modelSeed, *modelSteps)
		return
	}
	for seed := uint64(1); seed <= uint64(*modelSeeds); seed++ {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) { runModel(t, seed, *modelSteps) })
	}
}

// logFile is one file of the model: an inode's life, or its content up to
// a truncation. Its lines are "g<gen>.<seq> <text>".
type logFile struct {
	gen      int
	path     string // "" once deleted
	ino      uint64
	lines    []string   // complete lines, without their newline
	partial  *modelLine // the line being written, nil when none
	finished bool       // no more writes: a partial line written is a line
	optional int        // lines from here on may be missing
	copy     bool       // a copytruncate's copy: its lines belong to another file
}

type fileModel struct {
	t       *testing.T
	rng     *rand.Rand
	dir     string
	glob    string
	src     *FileSource
	files   []*logFile
	cur     *logFile // the file at the glob's path, nil when there is none
	gen     int
	format  string              // of the files: formatPlain, formatCRI or formatDocker
	stamp   int                 // the last physical line's timestamp, in ns
	run     *fileRun            // nil while the collector is down
	pos     Position            // the position stored with the last record
	owners  map[uint64]*logFile // the file each cursor of pos was saved for, by inode
	stored  []Record
	pending []Record // emitted, not stored yet (no position since)
	killIn  int      // records until a kill in the middle of a pass (0: none)
	log     []string // the steps, for the failure message
}

var errKilled = errors.New("test: killed")

func runModel(t *testing.T, seed uint64, steps int) {
	dir := t.TempDir()
	m := &fileModel{t: t, rng: rand.New(rand.NewPCG(seed, 25)), dir: dir, glob: filepath.Join(dir, "app.log"), format: []string{formatPlain, formatCRI, formatDocker}[seed%3]}
	var err error
	if m.src, err = NewFileSource(m.glob, 0, 1<<20); err != nil {
		t.Fatal(err)
	}
	m.start()
	for range steps {
		switch n := m.rng.IntN(100); {
		case n < 40:
			m.write()
		case n < 60:
			m.pass()
		case n < 68:
			m.rotate()
		case n < 74:
			m.copyTruncate()
		case n < 80:
			m.remove()
		case n < 86:
			if m.run != nil {
				m.kill()
			} else {
				m.start()
			}
		case n < 90:
			m.killInPass()
		default:
			m.write()
			m.pass()
		}
	}
	if m.run == nil {
		m.start()
	}
	for range 3 {
		m.pass()
	}
	m.step("stop")
	if _, err := m.run.pass(true); err != nil {
		m.fail("last pass: %v", err)
	}
	m.run.close()
	for _, f := range m.files {
		m.finish(f)
	}
	m.check()
}

func (m *fileModel) step(format string, args ...any) {
	m.log = append(m.log, fmt.Sprintf(format, args...))
}

func (m *fileModel) fail(format string, args ...any) {
	m.t.Helper()
	var stored []string
	for _, r := range m.stored {
		stored = append(stored, fmt.Sprintf("%q", r.Value))
	}
	m.t.Fatalf("%s\nsteps:\n  %s\nstored: %s\nlast position: %s", fmt.Sprintf(format, args...),
		strings.Join(m.log, "\n  "), strings.Join(stored, " "), m.pos)
}

func (m *fileModel) emit(r Record, p Position) error {
	if m.killIn > 0 {
		if m.killIn--; m.killIn == 0 {
			return errKilled
		}
	}
	m.pending = append(m.pending, r)
	if p != nil {
		m.stored = append(m.stored, m.pending...)
		m.pending, m.pos = nil, append(Position(nil), p...)
		var fp filePosition
		if err := json.Unmarshal(p, &fp); err != nil {
			m.t.Fatal(err)
		}
		m.owners = map[uint64]*logFile{}
		for _, c := range fp.Files {
			for _, f := range m.files {
				if f.ino == c.Inode && f.path != "" {
					m.owners[c.Inode] = f
				}
			}
		}
	}
	return nil
}

// start starts a collector from the stored position. A file it cannot find
// again (deleted; renamed away from the glob's path while none ran, and not
// in the position: a file on the inode of one that is, is another file)
// has lost the lines not stored.
func (m *fileModel) start() {
	m.step("start")
	empty := map[uint64]bool{} // inodes of cursors of files read nothing of
	if m.pos != nil {
		var p filePosition
		if err := json.Unmarshal(m.pos, &p); err != nil {
			m.t.Fatal(err)
		}
		for _, c := range p.Files {
			empty[c.Inode] = c.Offset == 0 && c.HeadLen == 0
		}
	}
	for _, f := range m.files {
		if f.copy && f.path != "" && empty[f.ino] {
			// A file on the inode of one the collector read nothing
			// of is that file renamed, as far as it can tell: it is
			// read whole. A copy would be read twice: the model
			// takes it away.
			m.step("delete g%d at %s (on the inode of an empty cursor)", f.gen, filepath.Base(f.path))
			m.delete(f)
		}
	}
	for _, f := range m.files {
		if f.path == "" || f.path != m.glob && m.owners[f.ino] != f {
			m.unread(f)
		}
	}
	var err error
	if m.run, err = m.src.start(m.pos, m.emit); err != nil {
		m.fail("start: %v", err)
	}
}

// kill stops the collector between two passes: what it emitted without a
// position is lost with it.
func (m *fileModel) kill() {
	m.step("kill")
	m.run.close()
	m.run, m.pending = nil, nil
}

// killInPass kills the collector after some records of its next pass.
func (m *fileModel) killInPass() {
	if m.run == nil {
		m.start()
	}
	m.killIn = 1 + m.rng.IntN(4)
	m.step("kill after %d records", m.killIn)
	_, err := m.run.pass(false)
	if err != nil && !errors.Is(err, errKilled) {
		m.fail("pass: %v", err)
	}
	m.killIn = 0
	m.kill()
}

func (m *fileModel) pass() {
	if m.run == nil {
		return
	}
	m.step("pass")
	if _, err := m.run.pass(false); err != nil {
		m.fail("pass: %v", err)
	}
}

// reading tells whether the running collector has f open.
func (m *fileModel) reading(f *logFile) bool {
	if m.run == nil {
		return false
	}
	for _, t := range m.run.files {
		if t.cur.Inode == f.ino {
			return true
		}
	}
	return false
}

// unread makes the lines of f not stored yet ones that may be missing.
func (m *fileModel) unread(f *logFile) {
	if f.copy {
		return
	}
	n := 0
	re := regexp.MustCompile(fmt.Sprintf(`^g%d\.(\d+) `, f.gen))
	for _, r := range m.stored {
		if s := re.FindStringSubmatch(string(r.Value)); s != nil {
			seq, _ := strconv.Atoi(s[1])
			n = max(n, seq+1)
		}
	}
	f.optional = min(f.optional, n)
}

// finish ends the writes to f: a partial line written is a line.
func (m *fileModel) finish(f *logFile) {
	if f.finished {
		return
	}
	f.finished = true
	if f.partial != nil {
		f.lines = append(f.lines, f.partial.writtenText())
	}
	f.partial = nil
}

func (m *fileModel) newFile(path string) *logFile {
	m.gen++
	f := &logFile{gen: m.gen, path: path, optional: 1 << 30}
	m.files = append(m.files, f)
	return f
}

func (m *fileModel) inode(path string) uint64 {
	fi, err := os.Stat(path)
	if err != nil {
		m.t.Fatal(err)
	}
	_, ino := inode(fi)
	return ino
}

// write appends to the file at the glob's path (created if missing) the
// rest of its partial line, new lines, and maybe the start of one more.
func (m *fileModel) write() {
	if m.cur == nil {
		m.cur = m.newFile(m.glob)
		m.step("create g%d", m.cur.gen)
	}
	f := m.cur
	var b strings.Builder
	if l := f.partial; l != nil {
		b.WriteString(l.phys[l.written:] + "\n")
		f.lines = append(f.lines, l.text)
		f.partial = nil
	}
	for range m.rng.IntN(4) {
		l := m.line(f)
		b.WriteString(l.phys + "\n")
		f.lines = append(f.lines, l.text)
	}
	if m.rng.IntN(3) == 0 {
		l := m.line(f)
		if l.cut(m.rng, m.format) {
			f.partial = l
			b.WriteString(l.phys[:l.written])
		} else {
			b.WriteString(l.phys + "\n")
			f.lines = append(f.lines, l.text)
		}
	}
	m.step("write g%d: %q", f.gen, b.String())
	fd, err := os.OpenFile(m.glob, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	if _, err := fd.WriteString(b.String()); err != nil {
		m.t.Fatal(err)
	}
	fd.Close()
	if ino := m.inode(m.glob); ino != f.ino {
		f.ino = ino
		m.step("g%d has inode %d", f.gen, ino)
	}
}

// modelLine is one line as written to a file: plain, its text; CRI or
// Docker, its text in one to three pieces, each a physical line with its
// own timestamp, all but the last tagged P (CRI) or without a newline in
// their log (Docker).
type modelLine struct {
	text    string
	phys    string // the physical lines, without the last newline
	pieces  []piece
	written int // bytes of phys written
}

// piece is where a piece of a line's text is in its physical lines.
type piece struct{ at, from, n int } // phys offset, text offset, length

// line makes the next line of f.
func (m *fileModel) line(f *logFile) *modelLine {
	text := make([]byte, m.rng.IntN(13))
	for i := range text {
		text[i] = "abcdefghij kl"[m.rng.IntN(13)]
	}
	l := &modelLine{text: fmt.Sprintf("g%d.%d %s", f.gen, len(f.lines), text)}
	if m.format == formatPlain {
		l.phys, l.pieces = l.text, []piece{{0, 0, len(l.text)}}
		return l
	}
	// Pieces of one byte at least but the last, as runtimes split.
	cuts := []int{0}
	for range m.rng.IntN(3) {
		if c := cuts[len(cuts)-1] + 1 + m.rng.IntN(8); c < len(l.text) {
			cuts = append(cuts, c)
		}
	}
	cuts = append(cuts, len(l.text))
	var b strings.Builder
	for i := 0; i+1 < len(cuts); i++ {
		tag := "P"
		if i+2 == len(cuts) {
			tag = "F"
		}
		if i > 0 {
			b.WriteByte('\n')
		}
		m.stamp++
		ts := fmt.Sprintf("2026-12-01T04:00:00.%09dZ", m.stamp)
		text := l.text[cuts[i]:cuts[i+1]]
		if m.format == formatCRI {
			fmt.Fprintf(&b, "%s stdout %s ", ts, tag)
			l.pieces = append(l.pieces, piece{b.Len(), cuts[i], len(text)})
			b.WriteString(text)
			continue
		}
		// Docker's json-file: a piece is a log without its newline.
		if tag == "F" {
			text += "\n"
		}
		b.WriteString(`{"log":`)
		l.pieces = append(l.pieces, piece{b.Len() + 1, cuts[i], cuts[i+1] - cuts[i]})
		j, _ := json.Marshal(text)
		fmt.Fprintf(&b, `%s,"stream":"stdout","time":"%s"}`, j, ts)
	}
	l.phys = b.String()
	return l
}

// cut picks how much of l is written: a random place in the text of one
// of its pieces, past the line's "g<gen>.<seq> " (so that what a collector
// makes of it tells its line). Docker writes whole JSON lines: a line
// written in part is some of its pieces, when it has more than one.
func (l *modelLine) cut(rng *rand.Rand, format string) bool {
	head := strings.IndexByte(l.text, ' ') + 1
	if format == formatDocker {
		var at []int // where the physical lines after the first start
		for k, p := range l.pieces[1:] {
			if p.from >= head {
				at = append(at, strings.LastIndexByte(l.phys[:l.pieces[k+1].at], '\n')+1)
			}
		}
		if len(at) == 0 {
			return false
		}
		l.written = at[rng.IntN(len(at))]
		return true
	}
	for {
		p := l.pieces[rng.IntN(len(l.pieces))]
		lo := max(0, head-p.from)
		if lo <= p.n {
			l.written = p.at + lo + rng.IntN(p.n-lo+1)
			return true
		}
	}
}

// writtenText is the text of the part of l written.
func (l *modelLine) writtenText() string {
	n := 0
	for _, p := range l.pieces {
		if p.at <= l.written {
			n = p.from + min(l.written-p.at, p.n)
		}
	}
	return l.text[:n]
}

// shift makes room for app.log.1: app.log.1 becomes app.log.2, and
// app.log.2 is deleted (logrotate's rotate 2).
func (m *fileModel) shift() {
	for _, f := range m.files {
		if f.path == m.glob+".2" {
			m.delete(f)
		}
	}
	for _, f := range m.files {
		if f.path == m.glob+".1" {
			if err := os.Rename(f.path, m.glob+".2"); err != nil {
				m.t.Fatal(err)
			}
			f.path = m.glob + ".2"
		}
	}
}

func (m *fileModel) delete(f *logFile) {
	if err := os.Remove(f.path); err != nil {
		m.t.Fatal(err)
	}
	f.path = ""
	if !m.reading(f) {
		m.unread(f)
	}
	m.finish(f)
}

// rotate renames app.log to app.log.1; the writer goes on in a new file.
func (m *fileModel) rotate() {
	if m.cur == nil {
		return
	}
	m.step("rotate g%d", m.cur.gen)
	m.shift()
	f := m.cur
	if err := os.Rename(f.path, m.glob+".1"); err != nil {
		m.t.Fatal(err)
	}
	f.path, m.cur = m.glob+".1", nil
	if m.run != nil && !m.reading(f) {
		m.unread(f) // renamed before a collector saw it
	}
	m.finish(f)
}

// copyTruncate copies app.log to app.log.1 and truncates it: the writer
// goes on in the same file, from its start. The lines written since the
// collector last read the file are in the copy only.
func (m *fileModel) copyTruncate() {
	if m.cur == nil {
		return
	}
	m.step("copytruncate g%d", m.cur.gen)
	m.shift()
	data, err := os.ReadFile(m.glob)
	if err != nil {
		m.t.Fatal(err)
	}
	if err := os.WriteFile(m.glob+".1", data, 0o644); err != nil {
		m.t.Fatal(err)
	}
	cp := m.newFile(m.glob + ".1")
	cp.copy, cp.finished, cp.ino = true, true, m.inode(cp.path)
	m.step("copy of g%d: g%d, inode %d", m.cur.gen, cp.gen, cp.ino)
	if err := os.Truncate(m.glob, 0); err != nil {
		m.t.Fatal(err)
	}
	old := m.cur
	m.unread(old)
	m.finish(old)
	old.path = ""
	m.cur = m.newFile(m.glob)
	m.cur.ino = old.ino
}

// remove deletes the file at the glob's path or a rotated one.
func (m *fileModel) remove() {
	var live []*logFile
	for _, f := range m.files {
		if f.path != "" {
			live = append(live, f)
		}
	}
	if len(live) == 0 {
		return
	}
	f := live[m.rng.IntN(len(live))]
	m.step("delete g%d at %s", f.gen, filepath.Base(f.path))
	if f == m.cur {
		m.cur = nil
	}
	m.delete(f)
}

// check compares the stored lines with the files' lines.
func (m *fileModel) check() {
	byGen := map[int]*logFile{}
	for _, f := range m.files {
		if !f.copy {
			byGen[f.gen] = f
		}
	}
	next := map[int]int{} // gen -> the seq after the last one stored
	re := regexp.MustCompile(`^g(\d+)\.(\d+) `)
	for i, r := range m.stored {
		s := re.FindStringSubmatch(string(r.Value))
		if s == nil {
			m.fail("stored record %d %q is no line written", i, r.Value)
		}
		gen, _ := strconv.Atoi(s[1])
		seq, _ := strconv.Atoi(s[2])
		f := byGen[gen]
		if f == nil || seq >= len(f.lines) || f.lines[seq] != string(r.Value) {
			m.fail("stored record %d %q is no line written", i, r.Value)
		}
		if seq < next[gen] {
			m.fail("stored record %d %q after g%d.%d: stored twice or out of order", i, r.Value, gen, next[gen]-1)
		}
		for missed := next[gen]; missed < seq; missed++ {
			if missed < f.optional {
				m.fail("line %q is not stored (before stored record %d %q)", f.lines[missed], i, r.Value)
			}
		}
		next[gen] = seq + 1
	}
	for _, f := range byGen {
		for seq := next[f.gen]; seq < len(f.lines) && seq < f.optional; seq++ {
			m.fail("line %q is not stored", f.lines[seq])
		}
	}
}

// TestSplitLineAcrossPasses: the pieces of a line the runtime split (CRI
// P lines) read by one look and its end (F) by the next make the line
// once, not the first pieces twice.
func TestSplitLineAcrossPasses(t *testing.T) {
	log := filepath.Join(t.TempDir(), "0.log")
	src, _ := NewFileSource(log, 0, 1<<20)
	var got []string
	r, err := src.start(nil, func(rec Record, _ Position) error {
		got = append(got, string(rec.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	for _, piece := range []string{
		"2026-12-01T04:00:00.1Z stdout P one ",
		"2026-12-01T04:00:00.2Z stdout P two ",
		"2026-12-01T04:00:00.3Z stdout F three",
	} {
		f, _ := os.OpenFile(log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		f.WriteString(piece + "\n")
		f.Close()
		if _, err := r.pass(false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := r.pass(true); err != nil {
		t.Fatal(err)
	}
	if want := []string{"one two three"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// Cases TestFileSourceModel found, kept as plain tests.

// runPasses starts a source of glob from pos, runs fn between its first
// pass and its last, and returns the records' values.
func runPasses(t *testing.T, glob string, pos Position, fn func(pass func())) []string {
	t.Helper()
	src, _ := NewFileSource(glob, 0, 1<<20)
	var got []string
	r, err := src.start(pos, func(rec Record, _ Position) error {
		got = append(got, string(rec.Value))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	pass := func() {
		if _, err := r.pass(false); err != nil {
			t.Fatal(err)
		}
	}
	pass()
	fn(pass)
	if _, err := r.pass(true); err != nil {
		t.Fatal(err)
	}
	return got
}

// cursorFor is a saved position of one cursor at path for the file at
// file, whose first bytes and bytes before offset were content's.
func cursorFor(t *testing.T, path, file string, content string, offset int) Position {
	t.Helper()
	fi, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	dev, ino := inode(fi)
	tail := content[max(0, offset-tailSize):offset]
	return Position(fmt.Sprintf(`{"files":[{"path":%q,"dev":%d,"inode":%d,"headLen":%d,"head":%q,"offset":%d,"tail":"%x","format":"plain"}]}`,
		path, dev, ino, len(content), hashHex([]byte(content)), offset, tail))
}

// A partial last line read, then the file truncated and written past it
// before the next look: the new bytes are a new line, not the partial
// line's end.
func TestTruncatedPastAPartialLine(t *testing.T) {
	log := filepath.Join(t.TempDir(), "app.log")
	os.WriteFile(log, []byte("tw"), 0o644)
	got := runPasses(t, log, nil, func(pass func()) {
		os.WriteFile(log, []byte("new content, longer\n"), 0o644) // truncates in place
		pass()
	})
	if want := []string{"new content, longer"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// At a start, a file on a saved cursor's inode whose bytes are not the
// cursor's (a copytruncate's copy on a deleted log's inode) is not read:
// it is not the renamed file, and not in the glob.
func TestRestartSkipsAnotherFileOnTheInode(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	os.WriteFile(log+".1", []byte("a copy of lines stored already\n"), 0o644)
	pos := cursorFor(t, log, log+".1", "the deleted log's first bytes\n", 10)
	if got := runPasses(t, log, pos, func(func()) {}); len(got) != 0 {
		t.Errorf("read %q from a file on the inode of another", got)
	}
}

// At a start, a cursor saved for a rotated file at its new path (found by
// an earlier start, which was killed before its end) reads the rest of it,
// though the glob does not match that path.
func TestRestartFinishesARotatedFileAtItsNewPath(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	os.WriteFile(log+".1", []byte("one\ntwo\nthr"), 0o644)
	pos := cursorFor(t, log+".1", log+".1", "one\ntwo\nthr", 4)
	got := runPasses(t, log, pos, func(func()) {})
	if want := []string{"two", "thr"}; !slices.Equal(got, want) {
		t.Errorf("records %q, want %q", got, want)
	}
}

// A file truncated and written again to the length read, then deleted or
// left as it is to the end of the run, is read again.
func TestTruncatedToTheLengthRead(t *testing.T) {
	for _, remove := range []bool{false, true} {
		log := filepath.Join(t.TempDir(), "app.log")
		os.WriteFile(log, []byte("one\n"), 0o644)
		got := runPasses(t, log, nil, func(pass func()) {
			os.WriteFile(log, []byte("two\n"), 0o644)
			if remove {
				os.Remove(log) // the source reads it on through its open file
			}
			pass()
			pass()
		})
		if want := []string{"one", "two"}; !slices.Equal(got, want) {
			t.Errorf("removed %v: records %q, want %q", remove, got, want)
		}
	}
}
