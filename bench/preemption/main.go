// Command preemption measures how long the collector takes from a Spot
// interruption notice to the job's outputs in the store, for bench/preemption.sh.
//
//	preemption -collector ./collector -files 20 -size 1048576 -rounds 3
//
// Each round runs the collector around an idle command with --sync-interval 0
// and a host-path store, on a fake EC2 metadata service (IMDSv2) of its own;
// writes the outputs; sets the notice once the collector watches; and looks
// at the store every 2 ms until it holds every file whole. It prints, per
// round: the time from the notice being set to the outputs in the store (the
// collector's poll of the metadata service included, at most a second), from
// the notice first served to the collector to the outputs in the store, and
// the time the same files take to copy and fsync into a folder alone (the
// upload itself, for a host-path store).
package main

import (
	"bufio"
	"crypto/rand"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	bin := flag.String("collector", "collector", "the collector binary")
	files := flag.Int("files", 20, "output files")
	size := flag.Int64("size", 1<<20, "bytes of each file")
	rounds := flag.Int("rounds", 3, "rounds")
	flag.Parse()
	var set, served, copied []time.Duration
	for r := 1; r <= *rounds; r++ {
		s, f, c, err := round(*bin, r, *files, *size)
		if err != nil {
			fmt.Fprintln(os.Stderr, "preemption:", err)
			os.Exit(1)
		}
		fmt.Printf("round %d: %d × %d bytes: notice set → in the store %v; notice served → in the store %v; copy+fsync alone %v\n",
			r, *files, *size, s.Round(time.Millisecond), f.Round(time.Millisecond), c.Round(time.Millisecond))
		set, served, copied = append(set, s), append(served, f), append(copied, c)
	}
	fmt.Printf("median of %d: notice set → in the store %v; notice served → in the store %v; copy+fsync alone %v\n",
		*rounds, median(set), median(served), median(copied))
}

func median(d []time.Duration) time.Duration {
	sort.Slice(d, func(a, b int) bool { return d[a] < d[b] })
	return d[len(d)/2].Round(time.Millisecond)
}

// imds is a fake EC2 metadata service: IMDSv2's token, and the notice once set.
type imds struct {
	mu     sync.Mutex
	token  string
	notice atomic.Bool
	served atomic.Int64
}

func (f *imds) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodPut && r.URL.Path == "/latest/api/token":
		f.token = fmt.Sprint(time.Now().UnixNano())
		fmt.Fprint(w, f.token)
	case r.Header.Get("X-aws-ec2-metadata-token") != f.token:
		http.Error(w, "", http.StatusUnauthorized)
	case r.URL.Path == "/latest/meta-data/spot/instance-action" && f.notice.Load():
		f.served.CompareAndSwap(0, time.Now().UnixNano())
		fmt.Fprintf(w, `{"action": "terminate", "time": "%s"}`, time.Now().Add(2*time.Minute).UTC().Format(time.RFC3339))
	default:
		http.NotFound(w, r)
	}
}

func round(bin string, r, files int, size int64) (set, served, copied time.Duration, err error) {
	dir, err := os.MkdirTemp("", "preemption-bench-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	fake := &imds{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	srv := &http.Server{Handler: fake}
	go srv.Serve(l)
	defer srv.Close()

	outputs, store := filepath.Join(dir, "outputs"), filepath.Join(dir, "store")
	run := fmt.Sprintf("bench-%d", r)
	cmd := exec.Command(bin, "--store", store, "--run", run, "--outputs-path", outputs, "--state-dir", filepath.Join(dir, "state"),
		"--sync-interval", "0", "--resources-interval", "0", "--", "sh", "-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done")
	cmd.Env = append(os.Environ(), "AWS_EC2_METADATA_SERVICE_ENDPOINT=http://"+l.Addr().String())
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	watching := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			if strings.Contains(line, "watching the cloud's preemption notice") {
				once.Do(func() { close(watching) })
			}
			if strings.Contains(line, "preemption") || strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
				fmt.Fprintln(os.Stderr, "  ", line)
			}
		}
	}()
	select {
	case <-watching:
	case <-time.After(30 * time.Second):
		return 0, 0, 0, fmt.Errorf("the collector does not watch the fake metadata service")
	}
	if err := os.MkdirAll(outputs, 0o755); err != nil {
		return 0, 0, 0, err
	}
	want := map[string]int64{}
	for i := range files {
		name := fmt.Sprintf("ckpt-%03d.bin", i)
		if err := writeRandom(filepath.Join(outputs, name), size); err != nil {
			return 0, 0, 0, err
		}
		want[name] = size
	}
	start := time.Now()
	fake.notice.Store(true)
	for {
		done := true
		for name, n := range want {
			fi, err := os.Stat(filepath.Join(store, run, "outputs", name))
			if err != nil || fi.Size() != n {
				done = false
				break
			}
		}
		if done {
			break
		}
		if time.Since(start) > 5*time.Minute {
			return 0, 0, 0, fmt.Errorf("the outputs are not in the store 5 minutes after the notice")
		}
		time.Sleep(2 * time.Millisecond)
	}
	end := time.Now()
	set, served = end.Sub(start), end.Sub(time.Unix(0, fake.served.Load()))
	copied, err = copyAlone(outputs, filepath.Join(dir, "copy"))
	return set, served, copied, err
}

func writeRandom(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// copyAlone copies the files of src into dst, each fsynced, and returns how
// long it took.
func copyAlone(src, dst string) (time.Duration, error) {
	start := time.Now()
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return 0, err
	}
	ents, err := os.ReadDir(src)
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		in, err := os.Open(filepath.Join(src, e.Name()))
		if err != nil {
			return 0, err
		}
		out, err := os.Create(filepath.Join(dst, e.Name()))
		if err == nil {
			_, err = io.Copy(out, in)
			if err == nil {
				err = out.Sync()
			}
			out.Close()
		}
		in.Close()
		if err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}
