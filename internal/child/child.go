package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	stdsync "sync"
	"syscall"
	"time"
)

// Command is a command to run.
type Command struct {
	Args []string // program and arguments
	Env  []string // extra KEY=VALUE pairs added to the collector's environment
	// Grace is how long the command has to exit after it was sent SIGTERM,
	// before it is killed.
	Grace time.Duration
	// Stdout and Stderr receive the command's output; nil means the
	// collector's own. An Output passes it through and offers its lines.
	Stdout, Stderr io.Writer
	// Behind makes the collector's threads run SCHED_BATCH while the
	// command runs (Linux): they never take the CPU from it on waking up.
	// The command itself keeps the normal policy.
	Behind bool
	// Started, when set, is called once the command runs its own program
	// (after its exec), or could not be started.
	Started func()
}

// Run starts the command and waits for it. When ctx ends (the collector got
// SIGTERM or SIGINT), the command is sent SIGTERM, and killed after Grace.
// It returns the command's exit code; err is set only when the command could
// not be started.
func (c Command) Run(ctx context.Context) (int, error) {
	if len(c.Args) == 0 {
		return 0, errors.New("no command")
	}
	cmd := exec.Command(c.Args[0], c.Args[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	// A writer that is not a file gets a pipe of ours, copied in a
	// goroutine: exec's own copy would make Wait wait for every process
	// that keeps the pipe open (a job's background daemon), long after the
	// command exited.
	var copies stdsync.WaitGroup
	var childEnds []*os.File
	pipe := func(w io.Writer) (*os.File, error) {
		if f, ok := w.(*os.File); ok {
			return f, nil
		}
		r, pw, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		growPipe(r)
		childEnds = append(childEnds, pw)
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(w, r)
			r.Close()
		}()
		return pw, nil
	}
	for _, s := range []struct {
		dst *io.Writer
		w   io.Writer
	}{{&cmd.Stdout, c.Stdout}, {&cmd.Stderr, c.Stderr}} {
		if s.w == nil {
			continue
		}
		f, err := pipe(s.w)
		if err != nil {
			return 127, fmt.Errorf("start %q: %w", c.Args[0], err)
		}
		*s.dst = f
	}
	cmd.Env = append(os.Environ(), c.Env...)
	err := cmd.Start()
	if c.Started != nil {
		c.Started()
	}
	for _, f := range childEnds {
		f.Close() // the command holds its own copies
	}
	if err != nil {
		return startFailedCode(err), fmt.Errorf("start %q: %w", c.Args[0], err)
	}
	track(cmd.Process)
	defer untrack(cmd.Process)
	if c.Behind {
		// After the start: the command inherits the policy of the thread
		// that started it.
		background()
		defer foreground()
	}
	done := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		// The command's output is read to its end, unless a process it
		// left behind keeps the pipe open: then what that process writes
		// later is still passed through, only not waited for.
		drained := make(chan struct{})
		go func() { copies.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(outputDrain):
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		// The signal that ended the run, SIGTERM when it was not one. A
		// Ctrl-C at the terminal has reached the command already (it is in
		// the terminal's foreground process group with the collector): a
		// second signal would cut short what it does on the first (Python's
		// KeyboardInterrupt handler saving a checkpoint).
		sig := os.Signal(syscall.SIGTERM)
		var signaled Signaled
		if errors.As(context.Cause(ctx), &signaled) {
			sig = signaled.Sig
		}
		if sig != syscall.SIGINT || !interactive() {
			_ = cmd.Process.Signal(sig)
		}
		grace := c.Grace
		if grace <= 0 {
			grace = 10 * time.Second
		}
		select {
		case err = <-done:
		case <-time.After(grace):
			_ = cmd.Process.Kill()
			err = <-done
		}
	}
	return ExitCode(err), nil
}

// running are the commands Run has started and not yet seen exit.
var running struct {
	mu    stdsync.Mutex
	procs map[*os.Process]struct{}
}

func track(p *os.Process) {
	running.mu.Lock()
	defer running.mu.Unlock()
	if running.procs == nil {
		running.procs = map[*os.Process]struct{}{}
	}
	running.procs[p] = struct{}{}
}

func untrack(p *os.Process) {
	running.mu.Lock()
	defer running.mu.Unlock()
	delete(running.procs, p)
}

// KillRunning kills every command Run is running, at once: for a collector
// told to exit without waiting (a second interrupt), so that it leaves no
// command behind.
func KillRunning() {
	running.mu.Lock()
	defer running.mu.Unlock()
	for p := range running.procs {
		_ = p.Kill()
	}
}

// Signaled is the cause of a run ended by a signal: Run passes it on to
// the command.
type Signaled struct{ Sig os.Signal }

func (s Signaled) Error() string { return s.Sig.String() + " signal received" }

// Is makes a run ended by a signal a canceled one.
func (s Signaled) Is(target error) bool { return target == context.Canceled }

// SignalRunning sends sig to every command Run is running, and reports
// whether there was one.
func SignalRunning(sig os.Signal) bool {
	running.mu.Lock()
	defer running.mu.Unlock()
	for p := range running.procs {
		_ = p.Signal(sig)
	}
	return len(running.procs) > 0
}

// outputDrain is how long Run waits, after the command exited, for the
// end of its output.
const outputDrain = time.Second

// ExitCode maps the result of exec.Cmd.Wait to a shell-style exit code.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 1
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// startFailedCode is the exit code a shell gives a command it could not
// start: 127 when there is no such program, 126 when there is one that
// cannot be run (not executable, a folder, not a program).
func startFailedCode(err error) int {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return 127
	}
	return 126
}
