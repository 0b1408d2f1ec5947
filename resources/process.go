package resources

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is the unit of the CPU times in /proc/<pid>/stat (USER_HZ, 100
// on every Linux architecture the collector ships for).
const clockTicks = 100

// Scope says which processes a ProcessTree measures. The zero Scope is
// every process visible but the collector's own (a sidecar in the pod's
// shared process namespace).
type Scope struct {
	// Parent > 0: the descendants of Parent (wrapper mode: the collector's,
	// so the wrapped command and everything it starts).
	Parent int
	// PIDs: these processes, each from the sample that first sees it (a pid
	// taken again by another process later is not), and their descendants.
	PIDs []int
	// Cgroup: the processes of the cgroup in this folder (its cgroup.procs
	// and those of the cgroups below it), and their descendants.
	Cgroup string
}

// all tells whether the scope is every visible process.
func (sc Scope) all() bool { return sc.Parent == 0 && len(sc.PIDs) == 0 && sc.Cgroup == "" }

// ProcessTree measures a set of processes from /proc (see Scope).
//
// A process stays in the tree from the sample that first sees it, even when
// its parent exits and it is adopted outside the tree. Its CPU time is
// counted once: while it lives, as its own time plus the time of the
// children it reaped (cutime, cstime); when it has gone, through its
// parent's cutime when the parent is in the tree or is the collector (whose
// reaped children's time getrusage gives), else (adopted outside) as the
// time the last sample saw. So a grandchild that ran and exited between two
// samples is counted through the child that reaped it, and the command's
// last moments through the collector that reaped it.
type ProcessTree struct {
	proc   string // "/proc"
	self   int
	scope  Scope
	parent int // scope.Parent
	all    bool
	// given are the start times of the Scope's PIDs once seen (0: not yet).
	given map[int]uint64
	page  float64

	members map[int]*procState
	scratch map[int]*procState
	gone    float64 // CPU seconds of members gone outside the tree
	last    float64 // the tree's CPU seconds at the previous sample
	cpu     rate
	buf     []byte
	path    []byte
	pids    []int
	started bool

	// outside are the pids of the last sample that were not in the tree
	// (wrapper mode): a process does not join the tree later, so their
	// stat is not read again while the pid stays. (A job process that took
	// such a pid within one interval, its old process gone, would be
	// missed: pids come round again only after pid_max new processes.)
	outside map[int]bool
	// lastPSS is when PSS was last read: reading it walks every mapping of
	// every process, the bulk of a sample's cost, so it is read at most
	// every pssEvery.
	lastPSS time.Time
}

// pssEvery is how often PSS is read at most.
const pssEvery = 10 * time.Second

// procState is one process as a sample read it.
type procState struct {
	start       uint64 // start time, in ticks after boot: tells a reused pid
	ppid        int
	cpu         float64 // utime+stime+cutime+cstime, seconds
	threads     int
	rss         uint64
	read, write uint64 // /proc/<pid>/io read_bytes, write_bytes
	hasIO       bool
}

// NewProcessTree measures the processes of scope in procDir ("/proc"). It
// reads them once, as the baseline of the first sample's counters.
func NewProcessTree(procDir string, scope Scope) (*ProcessTree, error) {
	if _, err := os.Stat(procDir + "/self/stat"); err != nil {
		return nil, fmt.Errorf("no process tree: %s is not readable: %w", procDir, err)
	}
	t := &ProcessTree{
		proc:    procDir,
		self:    os.Getpid(),
		scope:   scope,
		parent:  scope.Parent,
		all:     scope.all(),
		given:   map[int]uint64{},
		page:    float64(os.Getpagesize()),
		members: map[int]*procState{},
		scratch: map[int]*procState{},
		outside: map[int]bool{},
		buf:     make([]byte, 0, 4096),
		cpu:     rate{max: onlineCPUs(procDir)},
	}
	for _, pid := range scope.PIDs {
		t.given[pid] = 0
	}
	var s Sample
	if err := t.Sample(&s); err != nil {
		return nil, fmt.Errorf("no process tree: %w", err)
	}
	return t, nil
}

// rateWindow sets the shortest window a rate is taken over, and bounds the
// rate by limit cores when limit > 0 (a cgroup's CPU quota).
func (t *ProcessTree) rateWindow(window time.Duration, limit float64) {
	t.cpu.min = window
	if limit > 0 {
		t.cpu.max = min(t.cpu.max, limit)
	}
}

// Name implements Source.
func (t *ProcessTree) Name() string { return "process tree" }

// reapedInTree tells whether a member that has gone, child of ppid, is
// counted through whoever reaped it: a member still in the tree (next), the
// collector in wrapper mode, or a member that has gone too and is itself
// counted so. A parent outside the tree is not. (A child orphaned and
// adopted outside between two samples in which its parent also ended is
// taken as reaped by the parent: the usual order, and an undercount of its
// last interval at worst, where the opposite guess would count it twice.)
func (t *ProcessTree) reapedInTree(ppid int, next map[int]*procState) bool {
	for range len(t.members) + 1 {
		if t.parent == t.self && ppid == t.self {
			return true
		}
		if _, in := next[ppid]; in {
			return true
		}
		parent, was := t.members[ppid]
		if !was {
			return false
		}
		ppid = parent.ppid // gone too: its reaper holds both
	}
	return false
}

// Sample implements Source: processes, threads, open_fds, rss_bytes,
// pss_bytes (where smaps_rollup is readable, every pssEvery at most), and
// over the interval cpu_seconds, read_bytes and write_bytes; cpu_cores, the
// rate of CPU time, when the window since the last rate is long enough (see
// rate).
func (t *ProcessTree) Sample(s *Sample) error {
	// The collector's own reaped children (wrapper mode: the command, once
	// it has exited), read before the processes: a child reaped in between
	// is then in the next sample's count, never in two.
	var reaped float64
	if t.parent == t.self {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err == nil {
			reaped = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
		}
	}
	pids, err := t.listPIDs()
	if err != nil {
		return err
	}
	var inCgroup map[int]bool
	if t.scope.Cgroup != "" {
		if inCgroup, err = cgroupProcs(t.scope.Cgroup); err != nil {
			return err
		}
	}
	// Read every process, keeping the stat of those that may be members.
	all := t.scratch
	clear(all)
	for _, pid := range pids {
		if pid == t.self {
			continue
		}
		if t.outside[pid] && !inCgroup[pid] {
			continue
		}
		st := &procState{}
		if !t.readStat(pid, st) {
			continue // gone since the listing
		}
		all[pid] = st
	}
	// Membership: members stay (same start time); a process joins when it
	// is one of the scope's (a pid given, first seen now; a process of the
	// cgroup), or when its parent is a member (or, in wrapper mode, is the
	// parent). Repeat until stable: a child's pid may be lower than its
	// parent's.
	next := make(map[int]*procState, len(t.members)+4)
	for pid, st := range all {
		if old, ok := t.members[pid]; ok && old.start == st.start {
			next[pid] = st
		} else if t.all || inCgroup[pid] {
			next[pid] = st
		} else if start, ok := t.given[pid]; ok && (start == 0 || start == st.start) {
			t.given[pid] = st.start
			next[pid] = st
		}
	}
	if !t.all {
		for changed := true; changed; {
			changed = false
			for pid, st := range all {
				if _, in := next[pid]; in {
					continue
				}
				if _, pin := next[st.ppid]; pin || (t.parent > 0 && st.ppid == t.parent) {
					next[pid] = st
					changed = true
				}
			}
		}
	}
	if !t.all {
		// The pids read now that are not in the tree are not read again.
		live := t.outside
		t.outside = make(map[int]bool, len(live)+8)
		for _, pid := range pids {
			if _, in := next[pid]; !in && (live[pid] || all[pid] != nil) {
				t.outside[pid] = true
			}
		}
	}
	// Members that have gone: the time of one that its parent reaped is in
	// the parent's cutime, and so, up the line of members that have gone
	// too, in the cutime of the first one still here, or in the collector's
	// reaped children (counted above); else (adopted outside the tree) its
	// last time is kept here.
	for pid, old := range t.members {
		if st, ok := next[pid]; ok && st.start == old.start {
			continue
		}
		if !t.reapedInTree(old.ppid, next) {
			t.gone += old.cpu
		}
	}

	var cpu float64
	var threads, fds int
	var rss, pss, readB, writeB uint64
	pssSeen := false
	readPSS := s.Time.Sub(t.lastPSS) >= pssEvery || s.Time.IsZero()
	if readPSS && !s.Time.IsZero() {
		t.lastPSS = s.Time
	}
	for pid, st := range next {
		cpu += st.cpu
		threads += st.threads
		rss += st.rss
		fds += t.countFDs(pid)
		if !readPSS {
		} else if v, ok := t.readPSS(pid); ok {
			pss += v
			pssSeen = true
		}
		if t.readIO(pid, st) {
			prev, ok := t.members[pid]
			switch {
			case ok && prev.start == st.start && prev.hasIO:
				readB += st.read - min(prev.read, st.read)
				writeB += st.write - min(prev.write, st.write)
			case t.started:
				readB += st.read
				writeB += st.write
			}
		}
	}
	total := cpu + t.gone + reaped
	used := 0.0
	if t.started {
		used = max(0, total-t.last)
	} else {
		readB, writeB = 0, 0
	}
	cores, hasRate := t.cpu.observe(s, total)
	t.last = total
	t.started = true
	// The states read this time become the members; the old map is reused.
	t.scratch = t.members
	t.members = next

	s.Add("processes", float64(len(next)))
	s.Add("threads", float64(threads))
	s.Add("open_fds", float64(fds))
	s.Add("cpu_seconds", round(used, 3))
	if hasRate {
		s.Add("cpu_cores", round(cores, 4))
	}
	s.Add("rss_bytes", float64(rss))
	if pssSeen {
		s.Add("pss_bytes", float64(pss))
	}
	s.Add("read_bytes", float64(readB))
	s.Add("write_bytes", float64(writeB))
	return nil
}

// cgroupProcs reads the pids of the cgroup in dir and of the cgroups below
// it.
func cgroupProcs(dir string) (map[int]bool, error) {
	pids := map[int]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if path == dir {
				return err
			}
			return nil // a child cgroup removed meanwhile
		}
		if !d.IsDir() {
			return nil
		}
		data, err := os.ReadFile(filepath.Join(path, "cgroup.procs"))
		if err != nil {
			if path == dir {
				return err
			}
			return nil
		}
		for _, f := range bytes.Fields(data) {
			if pid, err := strconv.Atoi(string(f)); err == nil {
				pids[pid] = true
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("the processes of cgroup %s: %w", dir, err)
	}
	return pids, nil
}

// listPIDs lists the numeric entries of /proc.
func (t *ProcessTree) listPIDs() ([]int, error) {
	d, err := os.Open(t.proc)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	t.pids = t.pids[:0]
	for _, n := range names {
		if n[0] < '0' || n[0] > '9' {
			continue
		}
		if pid, err := strconv.Atoi(n); err == nil {
			t.pids = append(t.pids, pid)
		}
	}
	return t.pids, nil
}

// read reads a small /proc file into t.buf, with plain system calls (no
// *os.File: its set-up and finaliser would weigh on every sample).
func (t *ProcessTree) read(pid int, name string) ([]byte, bool) {
	t.path = append(t.path[:0], t.proc...)
	t.path = append(t.path, '/')
	t.path = strconv.AppendInt(t.path, int64(pid), 10)
	t.path = append(t.path, '/')
	t.path = append(t.path, name...)
	fd, err := syscall.Open(string(t.path), syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	defer syscall.Close(fd)
	t.buf = t.buf[:0]
	for {
		if len(t.buf) == cap(t.buf) {
			t.buf = append(t.buf, 0)[:len(t.buf)]
		}
		n, err := syscall.Read(fd, t.buf[len(t.buf):cap(t.buf)])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, false
		}
		if n == 0 {
			return t.buf, true
		}
		t.buf = t.buf[:len(t.buf)+n]
	}
}

// readStat reads /proc/<pid>/stat into st.
func (t *ProcessTree) readStat(pid int, st *procState) bool {
	b, ok := t.read(pid, "stat")
	if !ok {
		return false
	}
	// The command name is in parentheses and may hold anything: the fields
	// start after the last ')'. Field 3 (state) is rest[0].
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 > len(b) {
		return false
	}
	rest := b[i+2:]
	var f [22]uint64
	for n := 0; n < len(f); n++ {
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		if n > 0 { // rest[0] is the state letter
			v, err := strconv.ParseInt(string(rest[:j]), 10, 64)
			if err != nil {
				return false
			}
			f[n] = uint64(max(v, 0))
		}
		if j == len(rest) {
			if n < len(f)-1 {
				return false
			}
			break
		}
		rest = rest[j+1:]
	}
	// rest index = field number - 3.
	st.ppid = int(f[1])
	st.cpu = float64(f[11]+f[12]+f[13]+f[14]) / clockTicks
	st.threads = int(f[17])
	st.start = f[19]
	st.rss = f[21] * uint64(t.page)
	return true
}

// readIO reads read_bytes and write_bytes of /proc/<pid>/io (readable by
// the process's owner or root).
func (t *ProcessTree) readIO(pid int, st *procState) bool {
	b, ok := t.read(pid, "io")
	if !ok {
		return false
	}
	r, ok1 := fieldValue(b, "read_bytes:")
	w, ok2 := fieldValue(b, "write_bytes:")
	if !ok1 || !ok2 {
		return false
	}
	st.read, st.write, st.hasIO = r, w, true
	return true
}

// readPSS reads the proportional set size of /proc/<pid>/smaps_rollup.
func (t *ProcessTree) readPSS(pid int) (uint64, bool) {
	b, ok := t.read(pid, "smaps_rollup")
	if !ok {
		return 0, false
	}
	kb, ok := fieldValue(b, "\nPss:")
	return kb * 1024, ok
}

// countFDs counts the open files of pid: the size of /proc/<pid>/fd on
// Linux 6.2 and later, else its entries.
func (t *ProcessTree) countFDs(pid int) int {
	dir := t.proc + "/" + strconv.Itoa(pid) + "/fd"
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		return 0
	}
	if st.Size > 0 {
		return int(st.Size)
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0
	}
	return len(names)
}

// fieldValue finds "key <number>" in b and returns the number.
func fieldValue(b []byte, key string) (uint64, bool) {
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t")
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	v, err := strconv.ParseUint(string(rest[:j]), 10, 64)
	return v, err == nil
}

// isMember tells whether pid was in the tree at the last sample.
func (t *ProcessTree) isMember(pid int) bool {
	_, ok := t.members[pid]
	return ok
}
