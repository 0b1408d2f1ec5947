package report_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/report"
)

// A run's page from a file:// store: Collect reads the run (the store
// rooted at <run>/), Write renders it.
func Example() {
	dir, _ := os.MkdirTemp("", "report-example-")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "train", "outputs"), 0o755)
	os.WriteFile(filepath.Join(dir, "train", "outputs", "model.pt"), []byte("weights"), 0o644)

	store, _ := fileblob.OpenBucket(dir, nil)
	defer store.Close()
	run := blob.PrefixedBucket(store, "train/")
	defer run.Close()
	code := 0
	report.PutAttempt(context.Background(), run, report.AttemptRecord{Attempt: 1, Mode: "wrapper", ExitCode: &code})

	rep, err := report.Collect(context.Background(), run, report.Options{Run: "train", Store: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	var page strings.Builder
	rep.Write(&page)
	fmt.Println(len(rep.Attempts), rep.Attempts[0].Outcome(), rep.OutputsCount, strings.Contains(page.String(), "model.pt"))
	// Output: 1 exit 0 1 true
}
