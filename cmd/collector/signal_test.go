package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSecondSignalExitsAtOnce: the first SIGTERM starts the end (passed on
// to the command, which here ignores it, then the final sync); a second one
// makes the collector exit at once, 128+SIGTERM, killing the command rather
// than leaving it behind.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	dir := t.TempDir()
	pidFile, termed := filepath.Join(dir, "command.pid"), filepath.Join(dir, "termed")
	p := start(t, dir, nil, "--store", filepath.Join(dir, "store"), "--run", "twice", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--",
		"sh", "-c", `trap "touch `+termed+`" TERM; echo $$ > `+pidFile+`; while :; do sleep 0.1; done`)
	var pid int
	waitFor(t, 30*time.Second, "the command's pid", func() bool {
		data, _ := os.ReadFile(pidFile)
		pid, _ = strconv.Atoi(strings.TrimSpace(string(data)))
		return pid > 0
	})
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 10*time.Second, "the command to get the SIGTERM", func() bool { _, err := os.Stat(termed); return err == nil })
	// What is checked is that nothing happens: the collector waits for the
	// command that ignored the signal.
	select {
	case <-p.done:
		t.Fatalf("the collector exited on the first SIGTERM while the command still ran:\n%s", p.stderr.String())
	case <-time.After(300 * time.Millisecond):
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
// gets it), and the collector ends after its final sync. A sidecar ends on
// SIGHUP as on SIGTERM, after its final sync.
func TestSignalsPassedToTheCommand(t *testing.T) {
	dir := t.TempDir()
	ready := filepath.Join(dir, "ready")
	p := start(t, dir, nil, "--store", filepath.Join(dir, "store"), "--run", "passed", "--outputs-path", filepath.Join(dir, "outputs"),
		"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--",
		"bash", "-c", `trap "echo got USR1" USR1; trap "echo got HUP" HUP; touch `+ready+`; for i in $(seq 1 30); do sleep 0.1; done; echo done`)
	waitFor(t, 30*time.Second, "the command's traps", func() bool { _, err := os.Stat(ready); return err == nil })
	_ = p.cmd.Process.Signal(syscall.SIGUSR1)
	waitFor(t, 10*time.Second, "the command's USR1 trap", func() bool { return strings.Contains(p.stderr.String(), "got USR1\n") })
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

// TestCtrlCReachesTheCommandOnce: at a terminal, Ctrl-C reaches the
// command from the terminal itself (it is in the terminal's foreground
// process group with the collector); the collector sends it nothing more,
// so the command's own handler runs to its end, not cut short by a SIGTERM.
// A SIGINT sent to the collector
// alone (kill -INT, no terminal) is passed on as SIGINT, not SIGTERM.
func TestCtrlCReachesTheCommandOnce(t *testing.T) {
	dir := t.TempDir()
	job := `trap 'echo got TERM; exit 4' TERM; trap 'echo got INT; sleep 1; echo saved; exit 3' INT; touch ready; while :; do sleep 0.1; done`
	args := func(run string) []string {
		return []string{"--store", filepath.Join(dir, "store"), "--run", run, "--outputs-path", filepath.Join(dir, "outputs"),
			"--state-dir", filepath.Join(dir, "state"), "--resources-interval", "0", "--", "bash", "-c", job}
	}
	ready := filepath.Join(dir, "ready")

	terminal, tty := openPTY(t)
	p := startWith(t, binary, dir, nil, func(c *exec.Cmd) {
		c.Stdin = tty
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	}, args("at-a-terminal")...)
	tty.Close()
	waitFor(t, 30*time.Second, "the command's traps", func() bool { _, err := os.Stat(ready); return err == nil })
	if _, err := terminal.Write([]byte{3}); err != nil { // Ctrl-C
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 3 {
		t.Fatalf("exit code %d, want the command's 3:\n%s", code, p.stderr.String())
	}
	out := p.stderr.String()
	if strings.Count(out, "got INT") != 1 || !strings.Contains(out, "saved") || strings.Contains(out, "got TERM") {
		t.Errorf("the command's handler did not run once, to its end:\n%s", out)
	}

	os.Remove(ready)
	p = start(t, dir, nil, args("killed")...)
	waitFor(t, 30*time.Second, "the command's traps", func() bool { _, err := os.Stat(ready); return err == nil })
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	if code := p.wait(t, 30*time.Second); code != 3 || !strings.Contains(p.stderr.String(), "saved") {
		t.Fatalf("kill -INT: exit code %d, want the command's 3 after its INT handler:\n%s", code, p.stderr.String())
	}
}

// openPTY opens a pseudo-terminal: its controlling side, and the terminal.
func openPTY(t *testing.T) (control, tty *os.File) {
	t.Helper()
	control, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { control.Close() })
	if err := unix.IoctlSetPointerInt(int(control.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(control.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = io.Copy(io.Discard, control) }() // the terminal's echo
	return control, tty
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
