package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// component is one part of a run: the outputs sync, log collection,
// resource sampling, the HTTP listener. The run starts every component after
// the restore and stops them together.
type component interface {
	// Name names the component in logs and errors.
	Name() string
	// Run works until stop ends (the wrapped command exited, or SIGTERM in
	// a sidecar), then finishes its work (a final pass, its last
	// checkpoint) and returns. It must return by the time deadline ends:
	// deadline ends when the one shutdown budget, counted from SIGTERM, is
	// spent, and never before SIGTERM, so work left after a job that ended
	// by itself runs to completion.
	Run(stop, deadline context.Context) error
}

// runComponents runs the components until stop ends and each has finished,
// then runs finish (the state's final checkpoint). The shutdown budget runs
// from term (SIGTERM): the components share it but for a reserve kept for
// finish, which must run even when a component overran. It returns the
// errors of all of them, joined, each named by its component.
func runComponents(stop, term context.Context, budget time.Duration, log *slog.Logger, components []component, finish func(context.Context) error) error {
	reserve := min(budget/5, finishReserve)
	deadline, cancel := shutdownDeadline(term, budget-reserve)
	defer cancel()
	finishDeadline, cancelFinish := shutdownDeadline(term, budget)
	defer cancelFinish()
	errs := make(chan error, len(components))
	for _, c := range components {
		go func() {
			start := time.Now()
			err := c.Run(stop, deadline)
			if err != nil {
				err = fmt.Errorf("%s: %w", c.Name(), err)
			}
			log.Debug("component stopped", "component", c.Name(), "ran", time.Since(start).Round(time.Millisecond), "err", err)
			errs <- err
		}()
	}
	var all []error
	for range components {
		all = append(all, <-errs)
	}
	<-stop.Done() // a run without components still lasts until it ends
	if finish != nil {
		if err := finish(finishDeadline); err != nil {
			all = append(all, fmt.Errorf("final checkpoint: %w", err))
		}
	}
	return errors.Join(all...)
}

// finishReserve is the part of the shutdown budget, at most, kept for the
// final checkpoint after the components.
const finishReserve = 5 * time.Second

// errShutdownBudget ends the work left when the shutdown budget is spent.
var errShutdownBudget = errors.New("the shutdown timeout passed")

// shutdownDeadline returns a context that ends budget after term ends: the
// one budget from SIGTERM to exit that the wrapped command's shutdown and
// every component's final work share.
func shutdownDeadline(term context.Context, budget time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(term))
	stop := context.AfterFunc(term, func() {
		timer := time.AfterFunc(budget, func() { cancel(errShutdownBudget) })
		context.AfterFunc(ctx, func() { timer.Stop() })
	})
	return ctx, func() {
		stop()
		cancel(context.Canceled)
	}
}

// componentFunc makes a component of a name and a function.
type componentFunc struct {
	name string
	run  func(stop, deadline context.Context) error
}

func (c componentFunc) Name() string                             { return c.name }
func (c componentFunc) Run(stop, deadline context.Context) error { return c.run(stop, deadline) }
