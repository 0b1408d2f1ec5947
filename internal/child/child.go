package child

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
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
	if c.Stdout != nil {
		cmd.Stdout = c.Stdout
	}
	if c.Stderr != nil {
		cmd.Stderr = c.Stderr
	}
	cmd.Env = append(os.Environ(), c.Env...)
	if err := cmd.Start(); err != nil {
		return 127, fmt.Errorf("start %q: %w", c.Args[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
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
