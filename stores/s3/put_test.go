package s3_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestPutBytesChecksums: a small object goes up in one request that carries
// one checksum the server checks, its Content-MD5 (no CRC32 header, no
// signed SHA-256 of the payload besides), with the SHA-256 in the metadata;
// the server takes it, on both S3 servers. Without an MD5 the SDK's CRC32
// stays.
func TestPutBytesChecksums(t *testing.T) {
	for name, fixture := range map[string]func(testing.TB) storetest.Fixture{"versitygw": storetest.S3, "minio": storetest.MinIO} {
		t.Run(name, func(t *testing.T) {
			f := fixture(t)
			proxy, traffic := storetest.CountingProxy(t, f.Endpoint)
			if proxy == "" {
				t.Fatal("no proxy")
			}
			f.Conn.Schema.Bucket += "?endpoint=" + proxy
			var logs bytes.Buffer
			store, err := stores.Open(context.Background(), f.Conn, stores.Options{Getenv: f.Getenv, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { store.Close() })
			target := store.Target("run/")
			ctx := context.Background()
			data := bytes.Repeat([]byte("four KiB "), 455)
			sha, md := sha256.Sum256(data), md5.Sum(data)

			traffic.Reset()
			if err := target.PutBytes(ctx, "small.bin", data, stores.Sums{SHA256: sha[:], MD5: md[:]}); err != nil {
				t.Fatal(err)
			}
			puts := requests(traffic, http.MethodPut)
			if len(puts) != 1 {
				t.Fatalf("%d PUT requests, want 1", len(puts))
			}
			h := puts[0].Header
			if h.Get("Content-Md5") == "" {
				t.Error("no Content-MD5")
			}
			for k := range h {
				if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") {
					t.Errorf("header %s: %s, want only the Content-MD5 checked", k, h.Get(k))
				}
			}
			if got := h.Get("X-Amz-Content-Sha256"); got != "UNSIGNED-PAYLOAD" {
				t.Errorf("x-amz-content-sha256 = %q, want UNSIGNED-PAYLOAD", got)
			}
			got, err := target.Bucket.ReadAll(ctx, "small.bin")
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("read back %d bytes (%v), want the %d written", len(got), err, len(data))
			}
			attrs, err := target.Bucket.Attributes(ctx, "small.bin")
			if err != nil {
				t.Fatal(err)
			}
			if got, want := attrs.Metadata[stores.HashMetadataKey], hex.EncodeToString(sha[:]); got != want {
				t.Errorf("metadata sha256 = %q, want %q", got, want)
			}

			if logs.Len() > 0 {
				t.Errorf("reading the object back logged:\n%s", logs.String())
			}

			traffic.Reset()
			if err := target.PutBytes(ctx, "no-md5.bin", data, stores.Sums{SHA256: sha[:]}); err != nil {
				t.Fatal(err)
			}
			if puts := requests(traffic, http.MethodPut); len(puts) != 1 || puts[0].Header.Get("X-Amz-Checksum-Crc32") == "" {
				t.Errorf("without an MD5: %d PUTs, want 1 with the SDK's CRC32", len(puts))
			}
		})
	}
}

func requests(traffic *storetest.Traffic, method string) []storetest.Request {
	var out []storetest.Request
	for _, r := range traffic.Log() {
		if r.Method == method {
			out = append(out, r)
		}
	}
	return out
}
