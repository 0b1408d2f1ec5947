package preempt_test

import (
	"context"
	"fmt"
	"os"

	"github.com/mlsidecar/collector/preempt"
)

// The collector's use: the cloud the machine is on, if any, watched until
// the run ends.
func Example() {
	cloud := preempt.Detect(preempt.DMIDir, os.Getenv)
	if cloud == "" {
		return // not on a cloud: nothing to watch, nothing spent
	}
	w, err := preempt.New(preempt.Config{Cloud: cloud, Getenv: os.Getenv})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.Watch(ctx, func(n preempt.Notice) {
		fmt.Println(n.Cloud, n.Kind, "at", n.Deadline)
		cancel()
	})
}
