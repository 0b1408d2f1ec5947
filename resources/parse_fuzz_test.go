package resources

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// FuzzReadStat: a /proc/<pid>/stat line with any command name (it may hold
// spaces, parentheses, newlines) gives back the fields it was written
// with; any bytes at all are read or refused, never a panic.
func FuzzReadStat(f *testing.F) {
	f.Add("python3", byte('S'), uint32(1), uint32(250), uint32(30), uint32(4), uint32(1), uint32(8), uint32(123456), uint32(2048), []byte(nil))
	f.Add("a) b (c) S 1 2", byte('R'), uint32(0), uint32(0), uint32(0), uint32(0), uint32(0), uint32(1), uint32(0), uint32(0), []byte("1 (x) S 1 1 1 0 -1"))
	f.Add("", byte('Z'), uint32(7), uint32(1), uint32(2), uint32(3), uint32(4), uint32(5), uint32(6), uint32(7), []byte("42 (sh) R 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0\n"))
	f.Fuzz(func(t *testing.T, comm string, state byte, ppid, utime, stime, cutime, cstime, threads, start, rss uint32, raw []byte) {
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "42"), 0o755); err != nil {
			t.Fatal(err)
		}
		tree := &ProcessTree{proc: dir, page: 4096}
		os.WriteFile(filepath.Join(dir, "42", "stat"), raw, 0o644)
		var st procState
		tree.readStat(42, &st) // any bytes: read or refused

		if state == ' ' || state == ')' {
			state = 'S'
		}
		// Fields 4 to 52 as the kernel writes them (field n at index n-4).
		fields := make([]string, 49)
		for i := range fields {
			fields[i] = strconv.Itoa(i)
		}
		fields[0] = fmt.Sprint(ppid)
		fields[10], fields[11], fields[12], fields[13] = fmt.Sprint(utime), fmt.Sprint(stime), fmt.Sprint(cutime), fmt.Sprint(cstime)
		fields[16], fields[18], fields[20] = fmt.Sprint(threads), fmt.Sprint(start), fmt.Sprint(rss)
		line := fmt.Sprintf("42 (%s) %c %s\n", comm, state, strings.Join(fields, " "))
		os.WriteFile(filepath.Join(dir, "42", "stat"), []byte(line), 0o644)
		st = procState{}
		if !tree.readStat(42, &st) {
			t.Fatalf("%q refused", line)
		}
		want := procState{ppid: int(ppid), cpu: float64(uint64(utime)+uint64(stime)+uint64(cutime)+uint64(cstime)) / clockTicks,
			threads: int(threads), start: uint64(start), rss: uint64(rss) * 4096}
		if st != want {
			t.Fatalf("%q read as %+v, want %+v", line, st, want)
		}
	})
}

// FuzzFieldValue: "key: number" lines of /proc/<pid>/io and smaps_rollup
// give the number back, however the file around them looks.
func FuzzFieldValue(f *testing.F) {
	f.Add([]byte("rchar: 1\nwchar: 2\nread_bytes: 4096\nwrite_bytes: 0\n"), "read_bytes:", uint64(4096))
	f.Add([]byte("55d0c4a00000-7ffd2b5ff000 ---p 00000000 00:00 0 [rollup]\nRss: 900 kB\nPss: 700 kB\n"), "\nPss:", uint64(700))
	f.Fuzz(func(t *testing.T, file []byte, key string, v uint64) {
		fieldValue(file, key) // any bytes: read or refused
		if key == "" || strings.ContainsAny(key, "0123456789 \t") {
			return
		}
		b := fmt.Appendf(nil, "%s \t%d kB\n", key, v)
		if got, ok := fieldValue(b, key); !ok || got != v {
			t.Fatalf("%q: %d %v, want %d", b, got, ok, v)
		}
	})
}

// FuzzReadCgroup: any bytes in a cgroup's files: its memory use is read or
// an error names the file; cpu.stat and memory.events, written as the
// kernel writes them, give their counters back.
func FuzzReadCgroup(f *testing.F) {
	for _, v := range []string{"cgroup-v2", "cgroup-v2-oom"} {
		cur, _ := os.ReadFile(filepath.Join("testdata", v, "memory.current"))
		stat, _ := os.ReadFile(filepath.Join("testdata", v, "cpu.stat"))
		ev, _ := os.ReadFile(filepath.Join("testdata", v, "memory.events"))
		f.Add(cur, stat, ev, uint64(1), uint64(2), uint64(3))
	}
	f.Add([]byte("max\n"), []byte("usage_usec\n"), []byte("oom_kill  \n"), uint64(0), uint64(1<<63), uint64(9))
	f.Fuzz(func(t *testing.T, current, cpuStat, events []byte, usage, throttled, oomKills uint64) {
		dir := t.TempDir()
		p := CgroupPaths{Version: 2, Memory: dir}
		write := func(name string, b []byte) { os.WriteFile(filepath.Join(dir, name), b, 0o644) }
		write("memory.current", current)
		write("cpu.stat", cpuStat)
		write("memory.events", events)
		r, err := ReadCgroup(p)
		want, perr := strconv.ParseUint(strings.TrimSpace(string(current)), 10, 64)
		switch {
		case perr != nil && (err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "memory.current"))):
			t.Fatalf("memory.current %q: %v, want an error naming the file", current, err)
		case perr == nil && (err != nil || r.Memory != want):
			t.Fatalf("memory.current %q: %d, %v; want %d", current, r.Memory, err, want)
		}

		write("memory.current", []byte("1\n"))
		write("cpu.stat", fmt.Appendf(nil, "usage_usec %d\nuser_usec 1\nnr_periods 0\nnr_throttled 5\nthrottled_usec %d\n", usage, throttled))
		write("memory.events", fmt.Appendf(nil, "low 0\nhigh 0\nmax 2\noom 1\noom_kill %d\noom_group_kill 0\n", oomKills))
		if r, err = ReadCgroup(p); err != nil {
			t.Fatal(err)
		}
		if r.counters.cpu != float64(usage)/1e6 || r.counters.throttled != float64(throttled)/1e6 || r.OOMKills != uint64(float64(oomKills)) || r.counters.limitHits != 2 {
			t.Fatalf("usage %d, throttled %d, oom_kill %d read as %+v", usage, throttled, oomKills, r.counters)
		}
	})
}

// FuzzFindCgroup: whatever /proc/self/cgroup says, the cgroup found is the
// mount or a folder under it: a path out of a cgroup namespace's root
// ("/../..") is not followed out of the mount.
func FuzzFindCgroup(f *testing.F) {
	f.Add([]byte("0::/job\n"))
	f.Add([]byte("0::/../../..\n"))
	f.Add([]byte("12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n0::/\n"))
	f.Add([]byte("0::/job/../../job\n"))
	f.Add([]byte("0::/../elsewhere\n"))
	f.Fuzz(func(t *testing.T, self []byte) {
		base := t.TempDir()
		root := filepath.Join(base, "sys", "fs", "cgroup")
		for _, d := range []string{root, filepath.Join(root, "job"), filepath.Join(base, "sys", "fs", "elsewhere")} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(d, "memory.current"), []byte("1\n"), 0o644)
		}
		os.WriteFile(filepath.Join(root, "cgroup.controllers"), []byte("cpu memory\n"), 0o644)
		selfPath := filepath.Join(base, "self-cgroup")
		os.WriteFile(selfPath, self, 0o644)
		p, err := FindCgroup(root, selfPath)
		if err != nil {
			return
		}
		if rel, err := filepath.Rel(root, p.Memory); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("/proc/self/cgroup %q: the cgroup found is %s, outside the mount %s", self, p.Memory, root)
		}
	})
}
