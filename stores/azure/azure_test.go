package azure_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestBlockChecks uploads blocks, through the ordinary writer and the
// resumable uploader, to the test server (Azurite in its default strict
// mode refuses CRC64 with 500 FeatureNotSupported): the bytes land, the
// refused block is sent again once, with a Content-MD5, and later blocks of
// the connection go with their MD5 at once.
func TestBlockChecks(t *testing.T) {
	f := storetest.Azure(t)
	endpoint, err := url.Parse(os.Getenv("COLLECTOR_TEST_AZURE_ENDPOINT"))
	if err != nil {
		t.Fatal(err)
	}
	proxy, traffic := storetest.CountingProxy(t, endpoint.Scheme+"://"+endpoint.Host)
	connString := fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s%s;",
		os.Getenv("COLLECTOR_TEST_AZURE_ACCOUNT"), os.Getenv("COLLECTOR_TEST_AZURE_KEY"), proxy, endpoint.Path)
	f.Env = []string{"AZURE_CONNECTION_STRING=" + connString}
	store := f.OpenStore(t)
	target := store.Target("run/")
	ctx := context.Background()

	const blockSize, blocks = 1 << 20, 3
	data := make([]byte, blocks*blockSize)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}

	// The ordinary writer: three blocks, one at a time, and the commit.
	if err := target.Upload(ctx, "streamed.bin", bytes.NewReader(data), stores.Sums{}, blockSize, 1); err != nil {
		t.Fatalf("upload through the writer: %v", err)
	}
	if got, max := traffic.Puts("streamed.bin"), blocks+2; got > max {
		t.Errorf("the writer made %d PUTs for %d blocks, want at most %d (one block sent again, no retries)", got, blocks, max)
	}

	// The resumable uploader on the same connection: no block refused.
	p := stores.Progress{Key: "resumable.bin", Size: int64(len(data)), PartSize: blockSize}
	if _, err := target.Resumable.Upload(ctx, bytes.NewReader(data), &p, nil, 1, nil); err != nil {
		t.Fatalf("resumable upload: %v", err)
	}
	if got, want := traffic.Puts("resumable.bin"), blocks+1; got != want {
		t.Errorf("the resumable upload made %d PUTs, want %d (%d blocks and the commit)", got, want, blocks)
	}

	for _, key := range []string{"streamed.bin", "resumable.bin"} {
		got, err := target.Bucket.ReadAll(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("%s: %d bytes in the store differ from the %d uploaded", key, len(got), len(data))
		}
	}
}

// TestRefused checks that an answer the service will give again (404
// ContainerNotFound) matches stores.ErrRefused, with the service's text.
func TestRefused(t *testing.T) {
	f := storetest.Azure(t)
	f.Conn.Schema.Bucket = strings.Replace(f.Conn.Schema.Bucket, "wasbs://", "wasbs://no-such-container-", 1)
	store := f.OpenStore(t)
	p := stores.Progress{Key: "k.bin", Size: 10, PartSize: 10}
	_, err := store.Target("run/").Resumable.Upload(context.Background(), bytes.NewReader(make([]byte, 10)), &p, nil, 1, nil)
	if !errors.Is(err, stores.ErrRefused) {
		t.Errorf("upload to a missing container: got %v, want an error that matches stores.ErrRefused", err)
	}
	if !strings.Contains(fmt.Sprint(err), "ContainerNotFound") {
		t.Errorf("the error does not say what the service answered: %v", err)
	}
}
