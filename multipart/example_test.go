package multipart_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
	sum := sha256.Sum256(data)
	// A restarted collector takes p from its state file instead, after
	// checking that it still describes the file (else u.Abort(ctx, p)).
	p := multipart.Progress{Key: "model.bin", Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:]), PartSize: 4096}
	journal := multipart.JournalFunc(func(ctx context.Context, p multipart.Progress) error {
		return nil // a real journal writes p to the state file and fsyncs it
	})
	err = u.Upload(ctx, bytes.NewReader(data), &p, map[string]string{"sha256": p.SHA256}, 2, journal)
	if err != nil {
		log.Fatal(err)
	}
	got, err := bucket.ReadAll(ctx, "model.bin")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(p.Parts), "parts, whole:", bytes.Equal(got, data))
	// Output: 3 parts, whole: true
}
