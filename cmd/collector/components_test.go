package main

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// counter is a fake component: it counts ticks into its state section,
// continuing from the count an earlier attempt saved, and after stop it
// takes finishTook to finish, then saves its count (its last checkpoint).
type counter struct {
	section    *resume.Section
	finishTook time.Duration
	resumedAt  int
	count      int
}

func (c *counter) Name() string { return "counter" }

func (c *counter) Run(stop, deadline context.Context) error {
	var saved struct{ Count int }
	if _, err := c.section.Load(&saved); err != nil {
		return err
	}
	c.resumedAt, c.count = saved.Count, saved.Count
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.count++
			continue
		case <-stop.Done():
		}
		break
	}
	select { // the final work
	case <-time.After(c.finishTook):
	case <-deadline.Done():
		return context.Cause(deadline)
	}
	return c.section.Save(context.WithoutCancel(deadline), struct{ Count int }{c.count})
}

// begin starts an attempt of run "r" on the store folder, as the collector
// does: the restore (resume.Begin), then a Keeper for the components.
func begin(t *testing.T, store *blob.Bucket, stateDir string) (*resume.State, *resume.Keeper) {
	t.Helper()
	run := blob.PrefixedBucket(store, "r/")
	statePath := filepath.Join(stateDir, "r", "state.json")
	st, _, err := resume.Begin(context.Background(), resume.BeginOptions{
		Run: "r", StatePath: statePath, Outputs: t.TempDir(), Bucket: run, AutoResume: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, resume.NewKeeper(statePath, run, st, nil)
}

// TestComponentsRestoreRunShutdownFinalCheckpoint drives a fake component
// through a run: it starts from the section an earlier attempt left in the
// store (restore), runs until the run ends, finishes inside the shutdown
// budget, and its last checkpoint reaches the store (final checkpoint), where
// the next attempt on a fresh machine finds it. A component that overruns the
// budget is stopped at the deadline and named in the error.
func TestComponentsRestoreRunShutdownFinalCheckpoint(t *testing.T) {
	store := memStore(t)
	log := slog.New(slog.DiscardHandler)

	// Attempt 1: a wrapped command that ends by itself. Final work is not
	// cut short, however long it takes: there was no SIGTERM.
	_, keeper := begin(t, store, t.TempDir())
	c1 := &counter{section: keeper.Section("counter"), finishTook: 300 * time.Millisecond}
	stop, stopRun := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, stopRun)
	if err := runComponents(stop, context.Background(), 50*time.Millisecond, log, []component{c1}, keeper.Flush); err != nil {
		t.Fatalf("attempt 1: %v", err)
	}
	if c1.resumedAt != 0 || c1.count == 0 {
		t.Fatalf("attempt 1 counted from %d to %d; want from 0 to more", c1.resumedAt, c1.count)
	}

	// Attempt 2, on a fresh machine (empty state folder), ended by SIGTERM
	// with a 200 ms budget: the counter continues where attempt 1 stopped
	// and finishes in time; a component that overruns is cut at the deadline.
	_, keeper = begin(t, store, t.TempDir())
	c2 := &counter{section: keeper.Section("counter"), finishTook: 50 * time.Millisecond}
	slow := componentFunc{name: "slow", run: func(stop, deadline context.Context) error {
		<-stop.Done()
		<-deadline.Done() // final work that never ends
		return context.Cause(deadline)
	}}
	term, sigterm := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, sigterm)
	start := time.Now()
	err := runComponents(term, term, 200*time.Millisecond, log, []component{c2, slow}, keeper.Flush)
	took := time.Since(start)
	if !errors.Is(err, errShutdownBudget) || !strings.Contains(err.Error(), "slow:") || strings.Contains(err.Error(), "counter:") {
		t.Fatalf("attempt 2: err = %v; want the slow component named with the shutdown timeout, and nothing of the counter", err)
	}
	if took > 2*time.Second {
		t.Errorf("attempt 2 took %v after a 100 ms run and a 200 ms budget", took)
	}
	if c2.resumedAt != c1.count || c2.count <= c1.count {
		t.Fatalf("attempt 2 counted from %d to %d; want from attempt 1's %d to more", c2.resumedAt, c2.count, c1.count)
	}

	// Attempt 3 sees attempt 2's last checkpoint.
	st, _ := begin(t, store, t.TempDir())
	if got := string(st.Sections["counter"]); got != `{"Count":`+itoa(c2.count)+`}` {
		t.Errorf("attempt 3 restored section %s; want attempt 2's count %d", got, c2.count)
	}
}

// TestShutdownDeadlineStartsAtTermination: the shutdown budget runs from
// SIGTERM, not from when the components were told to stop.
func TestShutdownDeadlineStartsAtTermination(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		term, terminate := context.WithCancel(context.Background())
		ctx, cancel := shutdownDeadline(term, 25*time.Second)
		defer cancel()
		time.Sleep(time.Hour) // a long final sync after the job's own exit
		if ctx.Err() != nil {
			t.Fatal("the deadline ended without a termination signal")
		}
		terminate()
		time.Sleep(24 * time.Second)
		synctest.Wait()
		if ctx.Err() != nil {
			t.Fatal("the deadline ended before the shutdown budget was spent")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if cause := context.Cause(ctx); cause != errShutdownBudget {
			t.Fatalf("after the shutdown budget: cause %v, want %v", cause, errShutdownBudget)
		}
	})
}

func memStore(t *testing.T) *blob.Bucket {
	t.Helper()
	conn, err := stores.Resolve("mem://")
	if err != nil {
		t.Fatal(err)
	}
	s, err := stores.Open(context.Background(), conn, stores.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s.Bucket()
}

func itoa(n int) string { return strconv.Itoa(n) }
