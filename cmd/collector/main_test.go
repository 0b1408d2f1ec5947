package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"
)

// binary is the collector built once, with the race detector, for the
// tests that run it as a process; fastBinary is built without it, for tests
// whose timing matters more than race checks (the crash test).
var binary, fastBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "collector-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "collector")
	fastBinary = filepath.Join(dir, "collector-fast")
	for _, b := range [][]string{{"-race", "-o", binary}, {"-o", fastBinary}} {
		build := exec.Command("go", append(append([]string{"build"}, b...), ".")...)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build collector:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// process is a collector running as a child process.
type process struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

// start runs the collector with args in dir, with env added to the test's environment.
func start(t *testing.T, dir string, env []string, args ...string) *process {
	t.Helper()
	return startBinary(t, binary, dir, env, args...)
}

// startBinary runs the collector built as bin.
func startBinary(t *testing.T, bin, dir string, env []string, args ...string) *process {
	t.Helper()
	return startWith(t, bin, dir, env, nil, args...)
}

// startWith runs the collector built as bin, its command set up by
// configure too.
func startWith(t *testing.T, bin, dir string, env []string, configure func(*exec.Cmd), args ...string) *process {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	if configure != nil {
		configure(cmd)
	}
	p := &process{cmd: cmd, stderr: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.stderr, p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		err := cmd.Wait()
		p.code = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.code = 128 + int(ws.Signal())
		}
		_ = err
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("collector output:\n%s", p.stderr.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the exit code.
func (p *process) stop(t *testing.T, timeout time.Duration) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	return p.wait(t, timeout)
}

func (p *process) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(timeout):
		t.Fatalf("collector did not exit within %v; output:\n%s", timeout, p.stderr.String())
		return -1
	}
}

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond) // the poll: cond reads what a process outside writes
	}
}

// syncBuffer is a bytes.Buffer safe for the child's two output streams.
type syncBuffer struct {
	mu  stdsync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// runInProcess runs the collector's run function and returns its exit code
// and what it wrote.
func runInProcess(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	getenv := func(k string) string { return env[k] }
	var out bytes.Buffer
	code := run(ctx, args, getenv, &out, &out)
	return code, strings.TrimSpace(out.String())
}
