package multipart_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"

	"github.com/mlsidecar/collector/multipart"
)

func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "store")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	root, err := fileblob.OpenBucket(dir, &fileblob.Options{Metadata: fileblob.MetadataDontWrite, NoTempDir: true})
	if err != nil {
		log.Fatal(err)
	}
	defer root.Close()
	bucket := blob.PrefixedBucket(root, "run/outputs/")

	u, ok := multipart.New(bucket, multipart.Target{Dir: dir, Prefix: "run/outputs/"})
	if !ok {
		log.Fatal("no resumable upload for this store: use an ordinary one")
	}
	data := bytes.Repeat([]byte("weights "), 1250) // the file: 10000 bytes
	// A restarted collector takes p from its state file instead, after
	// checking that it still describes the file (else u.Abort(ctx, p)).
	p := multipart.Progress{Key: "model.bin", Size: int64(len(data)), PartSize: 4096}
	journal := multipart.JournalFunc(func(ctx context.Context, p multipart.Progress) error {
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
