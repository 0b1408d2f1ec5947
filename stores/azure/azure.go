// Package azure is the store backend for Azure Blob Storage (azblob through
// gocloud's azureblob). Beyond the container it provides the resumable
// large-object upload: blocks staged with a CRC64 the service verifies and
// committed at the end with the file's SHA-256 in the metadata; uncommitted
// blocks expire by themselves after a week. Every block of an ordinary
// upload carries a CRC64 too. Where the service refuses CRC64 (Azurite in
// its default strict mode), the blocks of the connection carry a
// Content-MD5 instead, from the first refusal on.
package azure

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	azblobblob "github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"

	"github.com/mlsidecar/collector/stores"
)

func init() { stores.Register(stores.KindWASB, backend{}) }

type backend struct{}

func (b backend) Open(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials, log *slog.Logger) (stores.Driver, error) {
	return b.OpenPooled(ctx, c, loc, creds, log, stores.IdleConnsPerHost)
}

// OpenPooled is Open with a client that keeps idleConns idle connections.
func (backend) OpenPooled(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials, log *slog.Logger, idleConns int) (stores.Driver, error) {
	checks := &blockChecks{}
	b, client, err := openAzure(ctx, c, loc, creds, checks, idleConns)
	if err != nil {
		return nil, err
	}
	return &driver{bucket: b, client: client, checks: checks}, nil
}

// driver is an open Azure container.
type driver struct {
	bucket *blob.Bucket
	client *container.Client
	checks *blockChecks // shared with the client's pipeline
}

func (d *driver) Bucket() *blob.Bucket { return d.bucket }

func (d *driver) Resumable(prefix string) stores.Uploader {
	return &azureUploader{client: d.client, prefix: prefix, b: blob.PrefixedBucket(d.bucket, prefix), checks: d.checks}
}

// Verify asks for a CRC64 on every block the writer stages, which the
// client's pipeline turns into a Content-MD5 where the service refuses
// CRC64 (azblob's streamed upload takes no other per-block check).
//
// The object's MD5 goes into its Content-MD5 property through the upload's
// own options rather than gocloud's ContentMD5: with that set, gocloud
// streams the upload through a pipe whose Close panics when the upload
// fails (gocloud.dev v0.47.0), and the service's answer (a missing
// container, refused credentials) is lost with it. The blocks are checked
// on the way by their CRC64 or MD5 all the same.
func (d *driver) Verify(opts *blob.WriterOptions, _ stores.Sums) {
	objectMD5 := opts.ContentMD5
	opts.ContentMD5 = nil
	opts.BeforeWrite = func(as func(any) bool) error {
		var o *azblob.UploadStreamOptions
		if as(&o) {
			o.TransactionalValidation = azblobblob.TransferValidationTypeComputeCRC64()
			if objectMD5 != nil {
				o.HTTPHeaders.BlobContentMD5 = objectMD5
			}
		}
		return nil
	}
}

// Limits are a block blob's: 50,000 blocks of at most 4,000 MiB, about
// 190.7 TiB in all.
func (d *driver) Limits() stores.Limits {
	return stores.Limits{MaxParts: azureMaxBlocks, MaxPartSize: azureMaxBlockSize, MaxObjectSize: azureMaxBlocks * azureMaxBlockSize}
}

func openAzure(ctx context.Context, c stores.Connection, bu stores.BucketURL, creds stores.Credentials, checks *blockChecks, idleConns int) (*blob.Bucket, *container.Client, error) {
	clientOpts := clientOptions(checks, idleConns)
	connString := creds.Get("AZURE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING")
	account := bu.Account
	if account == "" {
		account = creds.Get("AZURE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT")
	}
	var client *container.Client
	var err error
	if connString != "" && creds.Get("AZURE_ACCOUNT_KEY", "AZURE_STORAGE_KEY") == "" {
		client, err = container.NewClientFromConnectionString(connString, bu.Bucket, clientOpts)
		if err != nil {
			// The SDK's message may quote the string, which holds the key.
			return nil, nil, stores.ConfigErrorf(c.Setting()+".secret", "AZURE_CONNECTION_STRING is not a valid Azure Storage connection string")
		}
		b, err := azureblob.OpenBucket(ctx, client, nil)
		return b, client, err
	}
	if account == "" {
		return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "names no storage account; write wasbs://container@account.blob.core.windows.net/ or set AZURE_ACCOUNT_NAME")
	}
	svcOpts := azureblob.ServiceURLOptions{
		AccountName:   account,
		StorageDomain: bu.Domain,
		Protocol:      bu.Params.Get("protocol"),
		SASToken:      strings.TrimPrefix(creds.Get("AZURE_SAS_TOKEN", "AZURE_STORAGE_SAS_TOKEN"), "?"),
	}
	if svcOpts.StorageDomain == "" {
		svcOpts.StorageDomain = creds.Get("AZURE_STORAGE_DOMAIN")
	}
	if v := bu.Params.Get("localemu"); v != "" {
		if svcOpts.IsLocalEmulator, err = strconv.ParseBool(v); err != nil {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "parameter localemu=%q is not true or false", v)
		}
	}
	if v := bu.Params.Get("cdn"); v != "" {
		if svcOpts.IsCDN, err = strconv.ParseBool(v); err != nil {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "parameter cdn=%q is not true or false", v)
		}
	}
	svcURL, err := azureblob.NewServiceURL(&svcOpts)
	if err != nil {
		return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "%v", err)
	}
	containerURL := strings.TrimSuffix(strings.SplitN(string(svcURL), "?", 2)[0], "/") + "/" + bu.Bucket
	if svcOpts.SASToken != "" {
		containerURL += "?" + svcOpts.SASToken
	}
	switch key := creds.Get("AZURE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"); {
	case key != "":
		cred, kerr := azblob.NewSharedKeyCredential(account, key)
		if kerr != nil {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".secret", "AZURE_ACCOUNT_KEY is not a valid base64 account key")
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, clientOpts)
	case svcOpts.SASToken != "":
		client, err = container.NewClientWithNoCredential(containerURL, clientOpts)
	default:
		var cred azcore.TokenCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, nil, fmt.Errorf("no Azure Credentials (set AZURE_ACCOUNT_KEY, AZURE_CONNECTION_STRING, AZURE_SAS_TOKEN, or a managed identity): %w", err)
		}
		client, err = container.NewClient(containerURL, cred, clientOpts)
	}
	if err != nil {
		return nil, nil, err
	}
	b, err := azureblob.OpenBucket(ctx, client, nil)
	return b, client, err
}
