package sync

import (
	"context"
	"flag"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fsnotify/fsnotify"
	"gocloud.dev/blob"
	"gocloud.dev/blob/memblob"
)

// stored reports whether the store holds key.
func stored(b *blob.Bucket, key string) bool {
	ok, _ := b.Exists(context.Background(), key)
	return ok
}

// TestRescanPeriodIsTimeNotPasses: at --sync-interval 1, a change the
// watcher never hears of (as on NFS) waits for the full scan, which comes
// --rescan-interval after the last one, not after a number of passes; an
// overflow of the watcher brings a full scan at once.
func TestRescanPeriodIsTimeNotPasses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		b := memblob.OpenBucket(nil)
		cfg := testConfig()
		cfg.Interval = time.Second
		cfg.RescanInterval = 30 * time.Second
		s := newSyncer(t, cfg, dir, b, Options{})
		w := bareWatcher(s.root, nil) // hears only what the test tells it
		s.watch = func() (*watcher, error) { return w, nil }
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.Run(ctx, context.Background()) }()
		synctest.Wait() // the first pass, a full scan, has run

		write(t, dir, "missed.csv", "no event for this one\n")
		time.Sleep(29 * time.Second) // 29 passes of the interval
		synctest.Wait()
		if stored(b, "missed.csv") {
			t.Fatal("a file no event named was uploaded before --rescan-interval had passed")
		}
		time.Sleep(1500 * time.Millisecond)
		synctest.Wait()
		if !stored(b, "missed.csv") {
			t.Fatal("a file no event named was not uploaded by the full scan due 30 s after the first")
		}

		write(t, dir, "after-overflow.csv", "events lost\n")
		time.Sleep(time.Second)
		synctest.Wait()
		if stored(b, "after-overflow.csv") {
			t.Fatal("uploaded without an event or a full scan")
		}
		w.handleError(fsnotify.ErrEventOverflow)
		time.Sleep(500 * time.Millisecond) // the debounce: the settle time, at least 0.2 s
		synctest.Wait()
		if !stored(b, "after-overflow.csv") {
			t.Fatal("an overflow of the watcher did not bring a full scan at once")
		}

		// The overflow's scan counts as a full scan: the next is due
		// --rescan-interval after it.
		write(t, dir, "missed-again.csv", "no event\n")
		time.Sleep(28 * time.Second)
		synctest.Wait()
		if stored(b, "missed-again.csv") {
			t.Fatal("a full scan came sooner than --rescan-interval after the overflow's")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !stored(b, "missed-again.csv") {
			t.Fatal("no full scan --rescan-interval after the overflow's")
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestRescanWait: the time between full scans is --rescan-interval, longer
// when a scan costs more than 1 % of a core at that rate, and never longer
// than 5 minutes unless the interval asked for is.
func TestRescanWait(t *testing.T) {
	for _, tt := range []struct {
		period, cost, want time.Duration
	}{
		{time.Minute, 0, time.Minute},
		{time.Minute, 300 * time.Millisecond, time.Minute},
		{time.Minute, 900 * time.Millisecond, 90 * time.Second},
		{time.Minute, 10 * time.Second, 5 * time.Minute},
		{time.Second, 20 * time.Millisecond, 2 * time.Second},
		{time.Hour, 10 * time.Second, time.Hour},
	} {
		r := rescans{period: tt.period, cost: tt.cost}
		if got := r.wait(); got != tt.want {
			t.Errorf("rescan-interval %v, a scan costing %v: next scan after %v, want %v", tt.period, tt.cost, got, tt.want)
		}
	}
}

// TestRescanEveryIsStillTaken: the deprecated --rescan-every N is taken as a
// full scan every N sync intervals.
func TestRescanEveryIsStillTaken(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want time.Duration
	}{
		{nil, time.Minute},
		{[]string{"--rescan-interval", "20"}, 20 * time.Second},
		{[]string{"--sync-interval", "1", "--rescan-every", "100000"}, 100000 * time.Second},
		{[]string{"--rescan-every", "6"}, time.Minute},
	} {
		cfg := DefaultConfig()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if got := cfg.rescanPeriod(); got != tt.want {
			t.Errorf("%v: full scans every %v, want %v", tt.args, got, tt.want)
		}
	}
	for _, args := range [][]string{{"--rescan-interval", "0"}, {"--rescan-every", "-1"}} {
		cfg := DefaultConfig()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		cfg.RegisterFlags(fs)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		if err := cfg.Validate(); err == nil {
			t.Errorf("%v: valid, want an error naming the setting", args)
		}
	}
}
