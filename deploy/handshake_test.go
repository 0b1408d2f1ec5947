package deploy

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	stdsync "sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"
)

// TestComposeRunsToTheJobsEnd plays the compose demo without Docker: the
// built collector runs with the compose file's own wrapped command (the wait
// for the job's exit code), the job's own script runs beside it once the
// collector's ready file is there, as depends_on service_healthy starts it,
// and the two share folders where compose shares volumes. A local folder
// stands in for MinIO, and the Docker sources are left out (no engine
// here). The collector must exit after the job, with the job's exit code,
// with the job's outputs in the store byte for byte.
func TestComposeRunsToTheJobsEnd(t *testing.T) {
	p := loadCompose(t)
	c := collectorService(t, p)
	inv := parseInvocation(t, c.Command)
	job, ok := p.Services["job"]
	if !ok {
		t.Fatal("no service job")
	}
	script, ok := mountAt(job, "/job.sh")
	if !ok {
		t.Fatal("job: no /job.sh")
	}
	status := envValue(job, "JOB_STATUS")
	ready, _ := inv.flag("ready-file")
	if ready == "" {
		t.Fatal("collector: no --ready-file, which the job's start waits for")
	}
	if len(inv.command) != 3 || inv.command[0] != "/bin/sh" || inv.command[1] != "-c" {
		t.Fatalf("collector: wraps %q; want /bin/sh -c SCRIPT", inv.command)
	}

	for _, tt := range []struct {
		name     string
		kill     bool // SIGTERM the job half-way
		wantCode int
	}{
		{"job succeeds", false, 0},
		{"job terminated", true, 143},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			outputs := filepath.Join(dir, "outputs")
			statusFile := filepath.Join(dir, "job-status", filepath.Base(status))
			readyFile := filepath.Join(dir, "state", filepath.Base(ready))
			for _, d := range []string{outputs, filepath.Dir(statusFile)} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			// A stale exit code of an earlier `docker compose up`: the
			// collector must not take it for this job's.
			if err := os.WriteFile(statusFile, []byte("7\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			wait := strings.ReplaceAll(inv.command[2], status, statusFile)
			run, _ := inv.flag("run")
			collector := exec.Command(collectorBinary(t),
				"--outputs-path="+outputs,
				"--store="+filepath.Join(dir, "store"),
				"--state-dir="+filepath.Join(dir, "state"),
				"--run="+run,
				"--ready-file="+readyFile,
				"--sync-interval=1",
				"--", "/bin/sh", "-c", wait)
			collector.Env = []string{"PATH=/usr/bin:/bin", "HOME=" + dir}
			// Its own process group, so that a failed test ends the wrapped
			// shell too.
			collector.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			collector.WaitDelay = 5 * time.Second
			var log syncBuffer
			collector.Stdout, collector.Stderr = &log, &log
			if err := collector.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- collector.Wait() }()
			exited := false
			defer func() {
				if !exited {
					syscall.Kill(-collector.Process.Pid, syscall.SIGKILL)
					<-done
				}
			}()

			// depends_on: service_healthy, the healthcheck `test -f <ready file>`.
			waitForFile(t, readyFile, &log)
			jobCmd := exec.Command("sh", script.Source)
			jobCmd.Env = []string{"PATH=/usr/bin:/bin", "OUTPUTS_PATH=" + outputs, "JOB_STATUS=" + statusFile, "STEPS=3"}
			var jobOut syncBuffer
			jobCmd.Stderr = &jobOut
			stdout, err := jobCmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := jobCmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := bufio.NewScanner(stdout)
			for lines.Scan() {
				jobOut.Write(append(lines.Bytes(), '\n'))
				if tt.kill && strings.HasPrefix(lines.Text(), "step 2/") { // half-way
					jobCmd.Process.Signal(syscall.SIGTERM)
				}
			}
			jobCmd.Wait()

			select {
			case err := <-done:
				exited = true
				code := 0
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					code = exit.ExitCode()
				} else if err != nil {
					t.Fatal(err)
				}
				if code != tt.wantCode {
					t.Errorf("the collector exited %d; want the job's %d\ncollector:\n%s\njob:\n%s", code, tt.wantCode, log.String(), jobOut.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the collector is still running 30 s after the job ended:\n%s", log.String())
			}

			// The final sync: the job's outputs in the store, byte for byte.
			files := 0
			err = filepath.WalkDir(outputs, func(path string, d os.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				rel, _ := filepath.Rel(outputs, path)
				want, _ := os.ReadFile(path)
				got, err := os.ReadFile(filepath.Join(dir, "store", run, "outputs", rel))
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("store: outputs/%s is not the job's file (%v)", rel, err)
				}
				files++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if wantFiles := map[bool]int{false: 2, true: 1}[tt.kill]; files < wantFiles {
				t.Errorf("the job wrote %d files; want at least %d (metrics, and the model when it ran to its end):\n%s", files, wantFiles, jobOut.String())
			}
		})
	}
}

// waitForFile waits until path exists, woken by its folder's changes, and
// fails the test after 30 s showing log.
func waitForFile(t *testing.T, path string, log fmt.Stringer) {
	t.Helper()
	w, err := fsnotify.NewWatcher()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(filepath.Dir(path)); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-w.Events:
		case err := <-w.Errors:
			t.Fatalf("watch %s: %v", filepath.Dir(path), err)
		case <-timeout:
			t.Fatalf("no %s after 30 s:\n%s", path, log)
		}
	}
}

// syncBuffer is a bytes.Buffer that the test reads while the collector's
// output is copied into it.
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
