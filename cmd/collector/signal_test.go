package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignalExitsAtOnce: the first SIGTERM starts the end (passed on
// to the command, which here ignores it, then the final sync); a second one
// makes the collector exit at once, 128+SIGTERM, killing the command rather
// than leaving it behind.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "command.pid")
	p := start(t, dir, nil, "--store", filepath.Join(dir, "store"), "--run", "twice", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--",
		"sh", "-c", `trap "" TERM; echo $$ > `+pidFile+`; while :; do sleep 0.1; done`)
	var pid int
	waitFor(t, 30*time.Second, "the command's pid", func() bool {
		data, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		return pid > 0
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(500 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("the collector exited on the first SIGTERM while the command still ran:\n%s", p.stderr.String())
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit code %d after a second SIGTERM, want %d:\n%s", code, 128+int(syscall.SIGTERM), p.stderr.String())
	}
	if !strings.Contains(p.stderr.String(), "again: exiting now") {
		t.Errorf("no word of the forced exit:\n%s", p.stderr.String())
	}
	waitFor(t, 10*time.Second, "the command killed", func() bool {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true // gone
		}
		// A zombie is dead, waiting for whoever adopted it to reap it.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		return len(fields) > 0 && fields[0] == "Z"
	})
}

// TestSignalsPassedToTheCommand: SIGUSR1 and SIGHUP sent to a wrapper reach
// the command, as with tini or dumb-init (a job that checkpoints on SIGUSR1
// gets it; before, Go ignored it, and SIGHUP killed the collector before its
// final sync). A sidecar ends on SIGHUP as on SIGTERM, after its final sync.
func TestSignalsPassedToTheCommand(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	p := start(t, dir, nil, "--store", filepath.Join(dir, "store"), "--run", "passed", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--",
		"bash", "-c", `trap "echo got USR1" USR1; trap "echo got HUP" HUP; touch `+ready+`; for i in $(seq 1 30); do sleep 0.1; done; echo done`)
	waitFor(t, 30*time.Second, "the command's traps", func() bool { _, err := os.Stat(ready); return err == nil })
	_ = p.cmd.Process.Signal(syscall.SIGUSR1)
	time.Sleep(300 * time.Millisecond)
	_ = p.cmd.Process.Signal(syscall.SIGHUP)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d, want the command's 0:\n%s", code, p.stderr.String())
	}
	for _, want := range []string{"got USR1\n", "got HUP\n", "done\n"} {
		if !strings.Contains(p.stderr.String(), want) {
			t.Errorf("the command did not print %q:\n%s", want, p.stderr.String())
		}
	}

	side := start(t, dir, nil, "--store", filepath.Join(dir, "store"), "--run", "side", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--sync-interval", "0.2")
	waitFor(t, 30*time.Second, "the sidecar ready", func() bool { return strings.Contains(side.stderr.String(), "collector ready") })
	_ = side.cmd.Process.Signal(syscall.SIGHUP)
	if code := side.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("sidecar: exit code %d after SIGHUP, want 0 after its final sync:\n%s", code, side.stderr.String())
	}
	if !strings.Contains(side.stderr.String(), "final sync done") {
		t.Errorf("sidecar: no final sync after SIGHUP:\n%s", side.stderr.String())
	}
}

// TestOneCollectorPerState: a second collector on a run's state folder
// while the first runs (a sidecar started twice) is refused with exit 2,
// naming the first's pid and --state-dir, and writes nothing; once the
// first has exited, the folder is free again, whatever the exit (SIGKILL
// included: the kernel drops the lock).
func TestOneCollectorPerState(t *testing.T) {
	dir := t.TempDir()
	args := []string{"--store", filepath.Join(dir, "store"), "--run", "once", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--sync-interval", "0.2"}
	first := start(t, dir, nil, args...)
	waitFor(t, 30*time.Second, "the first collector ready", func() bool {
		return strings.Contains(first.stderr.String(), "collector ready")
	})
	journal := filepath.Join(dir, "state", "once", "state.json")
	before, _ := os.ReadFile(journal)
	code, out := runInProcess(t, nil, append(args, "--", "true")...)
	if code != exitUsage || !strings.Contains(out, fmt.Sprintf("pid %d", first.cmd.Process.Pid)) || !strings.Contains(out, "--state-dir") {
		t.Errorf("second collector: exit %d, %q; want exit 2 naming the first's pid and --state-dir", code, out)
	}
	if after, _ := os.ReadFile(journal); string(after) != string(before) {
		t.Errorf("the refused collector changed the state")
	}
	_ = first.cmd.Process.Signal(syscall.SIGKILL)
	first.wait(t, 10*time.Second)
	if code, out := runInProcess(t, nil, append(args, "--", "true")...); code != 0 {
		t.Errorf("after the first was killed: exit %d:\n%s", code, out)
	}
}

// TestVersion: `collector version` and `collector --version` print the
// same line, exit 0.
func TestVersion(t *testing.T) {
	code, out := runInProcess(t, nil, "version")
	code2, out2 := runInProcess(t, nil, "--version")
	if code != 0 || code2 != 0 || !strings.HasPrefix(out, "collector ") || out != out2 {
		t.Errorf("version: exit %d %q; --version: exit %d %q; want exit 0 and one line 'collector VERSION' from both", code, out, code2, out2)
	}
}
