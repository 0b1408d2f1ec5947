package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// s3Server is a versitygw (posix backend) that the test owns: on a port
// and a data folder of its own, so that the test can kill it and start it
// again on the same port and data, as a store that goes away and comes
// back.
type s3Server struct {
	bin  string // the versitygw binary
	addr string // 127.0.0.1:PORT
	data string // the posix root: every folder in it is a bucket
	meta string // versitygw's metadata folder where the disk has no user xattrs; "" otherwise
	cmd  *exec.Cmd
	done chan struct{}
	log  *syncBuffer
}

const (
	ownS3Key    = "outage-key"
	ownS3Secret = "outage-secret"
)

// startOwnS3 starts a versitygw of the test's own with one bucket and
// returns it; the test's cleanup kills it.
func startOwnS3(t *testing.T, bucket string) *s3Server {
	t.Helper()
	bin := os.Getenv("COLLECTOR_TEST_VERSITYGW")
	if bin == "" {
		if os.Getenv("COLLECTOR_TEST_SERVERS") == "1" {
			t.Fatal("COLLECTOR_TEST_VERSITYGW is not set although COLLECTOR_TEST_SERVERS=1: start the test servers again (scripts/servers.sh stop; scripts/servers.sh start)")
		}
		t.Skip("COLLECTOR_TEST_VERSITYGW not set: run the tests with scripts/test.sh (make test)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	s := &s3Server{bin: bin, addr: addr, data: filepath.Join(dir, "s3")}
	if err := os.MkdirAll(filepath.Join(s.data, bucket), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if s.running() {
			s.kill(t)
		}
		if t.Failed() {
			t.Logf("versitygw's output:\n%s", tail(s.log.String()))
		}
	})
	if err := s.start(); err != nil && strings.Contains(s.log.String(), "xattr") {
		// As scripts/servers.sh does: no user xattrs on this disk, keep
		// the metadata in a folder beside the root (not inside it).
		s.meta = filepath.Join(dir, "vgw-meta")
		if err := os.MkdirAll(s.meta, 0o755); err != nil {
			t.Fatal(err)
		}
		err = s.start()
		if err != nil {
			t.Fatal(err)
		}
	} else if err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs versitygw on s.addr and waits until it accepts connections.
func (s *s3Server) start() error {
	args := []string{"--port", s.addr, "posix"}
	if s.meta != "" {
		args = append(args, "--sidecar", s.meta)
	}
	s.cmd = exec.Command(s.bin, append(args, s.data)...)
	s.cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+ownS3Key, "ROOT_SECRET_KEY="+ownS3Secret)
	if s.log == nil {
		s.log = &syncBuffer{}
	}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	s.done = done
	go func() { _ = s.cmd.Wait(); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			return fmt.Errorf("versitygw exited at its start: %s", tail(s.log.String()))
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw does not accept connections on %s after 60 s", s.addr)
		}
		time.Sleep(100 * time.Millisecond) // until the port accepts
	}
}

func (s *s3Server) running() bool {
	select {
	case <-s.done:
		return false
	default:
		return s.done != nil
	}
}

// kill stops the server with SIGKILL, as a crashed store.
func (s *s3Server) kill(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Kill()
	select {
	case <-s.done:
	case <-time.After(30 * time.Second):
		t.Fatal("versitygw did not exit within 30 s of SIGKILL")
	}
}

// TestWrapperLogsAcrossA20sStoreOutage: the S3 server is killed while the
// wrapped command prints, stays away for 20 s, and starts again on the
// same port and data. The command prints before, during and after the
// outage; the collector exits with its code, passes its output through
// unchanged, and the store ends with every line once, in order per
// stream, labelled.
func TestWrapperLogsAcrossA20sStoreOutage(t *testing.T) {
	const (
		n      = 100_000 // lines on each stream: 200,000 in all
		before = 40_000  // printed before the outage
		during = 80_000  // printed up to here during it, in batches; the rest after it
		batch  = 2_000
	)
	const bucket = "outage"
	s3 := startOwnS3(t, bucket)
	dir := t.TempDir()
	stopped, restarted := filepath.Join(dir, "server-stopped"), filepath.Join(dir, "server-restarted")

	// lines A B: lines A..B-1 on stdout ("out i") and stderr ("err i").
	script := fmt.Sprintf(`lines() { awk -v a=$1 -v b=$2 'BEGIN { for (i = a; i < b; i++) { print "out " i; print "err " i > "/dev/stderr" } }'; }
lines 0 %[1]d
while [ ! -e %[4]s ]; do sleep 0.1; done
i=%[1]d; while [ $i -lt %[2]d ]; do lines $i $((i + %[3]d)); i=$((i + %[3]d)); sleep 0.4; done
while [ ! -e %[5]s ]; do sleep 0.1; done
lines %[2]d %[6]d
exit 3`, before, during, batch, stopped, restarted, n)

	store := "s3://" + bucket + "/team/artifacts?endpoint=http://" + s3.addr
	env := []string{"AWS_ACCESS_KEY_ID=" + ownS3Key, "AWS_SECRET_ACCESS_KEY=" + ownS3Secret}
	cmd := exec.Command(fastBinary, "--store", store, "--run", "outage20",
		"--outputs-path", filepath.Join(dir, "outputs"), "--state-dir", filepath.Join(dir, "state"),
		"--sync-interval", "0.3", "--resources-interval", "0", "--log-level", "error", "--", "sh", "-c", script)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
	var stdout, stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	})

	chunks := func() []string {
		m, _ := filepath.Glob(filepath.Join(s3.data, bucket, "team", "artifacts", "outage20", "logs", "*.jsonl.gz"))
		return m
	}
	waitFor(t, 60*time.Second, "the first chunk in the store", func() bool { return len(chunks()) > 0 })
	s3.kill(t)
	touch(t, stopped)
	t.Logf("store killed with %d chunks in it", len(chunks()))
	time.Sleep(20 * time.Second) // the outage under test
	if err := s3.start(); err != nil {
		t.Fatalf("start the store again: %v", err)
	}
	touch(t, restarted)

	select {
	case <-exited:
	case <-time.After(3 * time.Minute):
		t.Fatalf("the collector did not exit within 3 minutes of the store's return:\n%s", tail(stderr.String()))
	}
	if code := cmd.ProcessState.ExitCode(); code != 3 {
		t.Fatalf("collector exit %d, want the command's 3:\n%s", code, tail(stderr.String()))
	}
	if stdout.String() != numbered("out", n) {
		t.Errorf("pass-through stdout differs from the command's (%d bytes, want %d)", len(stdout.String()), len(numbered("out", n)))
	}
	if stderr.String() != numbered("err", n) {
		t.Errorf("pass-through stderr differs from the command's (%d bytes, want %d): %s", len(stderr.String()), len(numbered("err", n)), tail(stderr.String()))
	}
	t.Logf("%d chunks in the store at the end", len(chunks()))
	checkRecords(t, readLogs(t, env, "--store", store, "--run", "outage20", "--json"), "command", n)
}

func touch(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}
