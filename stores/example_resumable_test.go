package stores_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"

	"github.com/mlsidecar/collector/stores"
	_ "github.com/mlsidecar/collector/stores/file"
)

func ExampleTarget_Resumable() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	conn, err := stores.Resolve(dir)
	if err != nil {
		log.Fatal(err)
	}
	store, err := stores.Open(ctx, conn, stores.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	target := store.Target("run/outputs/")
	bucket, u := target.Bucket, target.Resumable
	if u == nil {
		log.Fatal("no resumable upload for this store: use an ordinary one")
	}
	data := bytes.Repeat([]byte("weights "), 1250) // the file: 10000 bytes
	// A restarted collector takes p from its state file instead, after
	// checking that it still describes the file (else u.Abort(ctx, p)).
	p := stores.Progress{Key: "model.bin", Size: int64(len(data)), PartSize: 4096}
	journal := stores.JournalFunc(func(ctx context.Context, p stores.Progress) error {
		return nil // a real journal writes p to the state file and fsyncs it
	})
	sum, err := u.Upload(ctx, bytes.NewReader(data), &p, nil, 2, journal)
	if err != nil {
		log.Fatal(err)
	}
	got, err := bucket.ReadAll(ctx, "model.bin")
	if err != nil {
		log.Fatal(err)
	}
	want := sha256.Sum256(data)
	fmt.Println(len(p.Parts), "parts, whole:", bytes.Equal(got, data), "sha256:", bytes.Equal(sum, want[:]))
	// Output: 3 parts, whole: true sha256: true
}
