// Package gcs is the store backend for Google Cloud Storage
// (cloud.google.com/go/storage through gocloud's gcsblob). Every ordinary
// upload carries the object's CRC32C when it is known, which GCS checks
// against the bytes it received before it commits the object.
//
// Beyond the bucket it provides the resumable large-object upload, which the
// Go client cannot give (its sessions are lost with the process): a JSON API
// resumable upload session, whose URI is the Progress ID the caller
// journals, so a restarted collector continues it. A session URI is a
// bearer credential for that one object: it is sent only to the endpoint it
// was started at, never put in an error (stores.Redact drops upload_id), and
// kept only in the local state file.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"cloud.google.com/go/storage"
	"gocloud.dev/blob"
	"gocloud.dev/blob/gcsblob"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/mlsidecar/collector/stores"
)

func init() { stores.Register(stores.KindGCS, backend{}) }

type backend struct{}

func (backend) Open(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials, log *slog.Logger) (stores.Driver, error) {
	clientOpts, err := clientOptions(creds)
	if err != nil {
		return nil, err
	}
	// storage.NewClient honours STORAGE_EMULATOR_HOST by itself.
	client, err := storage.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("create GCS client: %w", err)
	}
	opts := &gcsblob.Options{Client: client}
	if why := signing(ctx, creds, opts); why != "" {
		log.Debug("the GCS store signs no URLs, so the run's report lists the outputs without links", "why", stores.RedactString(why))
	}
	b, err := gcsblob.OpenBucket(ctx, nil, loc.Bucket, opts)
	if err != nil {
		return nil, err
	}
	api, err := newUploadAPI(ctx, loc.Bucket, creds.Getenv("STORAGE_EMULATOR_HOST"), clientOpts)
	if err != nil {
		b.Close()
		return nil, err
	}
	return &driver{bucket: b, api: api}, nil
}

// driver is an open GCS bucket.
type driver struct {
	bucket *blob.Bucket
	api    *uploadAPI
}

func (d *driver) Bucket() *blob.Bucket { return d.bucket }

// Resumable returns the uploader of resumable upload sessions.
func (d *driver) Resumable(prefix string) stores.Uploader {
	return &resumableUploader{api: d.api, prefix: prefix, b: blob.PrefixedBucket(d.bucket, prefix)}
}

// Verify sends the object's CRC32C, for GCS to check before it commits.
func (d *driver) Verify(opts *blob.WriterOptions, sums stores.Sums) {
	if sums.CRC32C == 0 {
		return
	}
	opts.BeforeWrite = func(as func(any) bool) error {
		var w *storage.Writer
		if as(&w) {
			w.CRC32C, w.SendCRC32C = sums.CRC32C, true
		}
		return nil
	}
}

// Limits are GCS's: objects up to 5 TiB, sent in chunks of any number, each
// but the last a multiple of 256 KiB.
func (d *driver) Limits() stores.Limits {
	return stores.Limits{MaxObjectSize: 5 << 40, PartMultiple: chunkUnit}
}

// clientOptions are the GCS client's credentials: a service account key
// (GC_KEY_PATH, GC_KEYFILE_DICT), else Google's default chain
// (GOOGLE_APPLICATION_CREDENTIALS, workload identity). With an emulator
// (STORAGE_EMULATOR_HOST) there are none.
func clientOptions(creds stores.Credentials) ([]option.ClientOption, error) {
	if creds.Getenv("STORAGE_EMULATOR_HOST") != "" {
		return nil, nil
	}
	data, _, err := connectionKey(creds)
	if err != nil || data == nil {
		return nil, err
	}
	return []option.ClientOption{option.WithAuthCredentialsJSON(option.ServiceAccount, data)}, nil
}

// defaultEndpoint is GCS's JSON API, where resumable uploads start.
const defaultEndpoint = "https://storage.googleapis.com"

// uploadAPI is the JSON API endpoint of one bucket's resumable uploads and
// the HTTP client that reaches it: authenticated with the bucket's
// credentials, or plain for an emulator.
type uploadAPI struct {
	client   *http.Client
	endpoint *url.URL // scheme and host
	bucket   string
}

// newUploadAPI builds the uploads' HTTP client. The storage client does not
// expose its own, so this one is made from the same credentials; with an
// emulator host (host:port or a URL, as the storage client reads
// STORAGE_EMULATOR_HOST) it is a plain client of the emulator.
func newUploadAPI(ctx context.Context, bucket, emulator string, clientOpts []option.ClientOption) (*uploadAPI, error) {
	api := &uploadAPI{bucket: bucket}
	if emulator != "" {
		u := &url.URL{Scheme: "http", Host: emulator}
		if strings.Contains(emulator, "://") {
			var err error
			if u, err = url.Parse(emulator); err != nil {
				return nil, fmt.Errorf("STORAGE_EMULATOR_HOST %q is not a host or URL: %w", emulator, err)
			}
		}
		api.endpoint = &url.URL{Scheme: u.Scheme, Host: u.Host}
		transport := http.DefaultTransport.(*http.Transport).Clone()
		transport.MaxIdleConns, transport.MaxIdleConnsPerHost = stores.IdleConnsPerHost, stores.IdleConnsPerHost
		api.client = &http.Client{Transport: transport}
	} else {
		opts := append([]option.ClientOption{option.WithScopes(storage.ScopeReadWrite)}, clientOpts...)
		// The token source may keep ctx for its refreshes: it must outlive Open.
		client, _, err := htransport.NewClient(context.WithoutCancel(ctx), opts...)
		if err != nil {
			return nil, fmt.Errorf("create GCS upload client: %w", err)
		}
		api.endpoint, _ = url.Parse(defaultEndpoint)
		c := *client // a copy: the redirect policy below is ours
		api.client = &c
	}
	// A 308 is GCS's "resume incomplete", not a redirect to follow.
	api.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return api, nil
}

// Refused implements stores.Refuser: an answer of GCS that trying again will
// not change (stores.RefusedAnswer), from the JSON API through the bucket
// (a *googleapi.Error) or from an upload session.
func (d *driver) Refused(err error) bool {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		reason := ""
		if len(ge.Errors) > 0 {
			reason = ge.Errors[0].Reason
		}
		return stores.RefusedAnswer(ge.Code, reason)
	}
	var he interface{ HTTPStatusCode() int }
	return errors.As(err, &he) && stores.RefusedAnswer(he.HTTPStatusCode(), "")
}
