package stores

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"gocloud.dev/blob"
	"gocloud.dev/blob/azureblob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/gcsblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"
	"google.golang.org/api/option"
)

// Options tune Open.
type Options struct {
	// Getenv reads the environment; nil means os.Getenv.
	Getenv func(string) string
	// ForWriting refuses a connection marked readOnly.
	ForWriting bool
}

// UnavailableError says a store could not be reached or used: a missing bucket,
// refused credentials, an unreachable endpoint.
type UnavailableError struct {
	Store string // Describe of the connection
	Err   error
}

func (e *UnavailableError) Error() string { return "store " + e.Store + ": " + e.Err.Error() }
func (e *UnavailableError) Unwrap() error { return e.Err }

// Describe names the store for logs and errors: kind, location and connection
// name, never a credential.
func Describe(c Connection) string {
	where := c.Schema.Bucket
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		where = c.Schema.MountPath
	}
	where = redactURL(where)
	if c.Name != "" && c.Name != where {
		return fmt.Sprintf("%s %s (connection %q)", c.Kind, where, c.Name)
	}
	return c.Kind + " " + where
}

// idleConnsPerHost is how many idle connections to the store the HTTP
// clients keep. The SDKs' default (10) is below the collector's parallel
// uploads (16 workers, parts in flight): every request beyond it dialed a new
// connection and left one in TIME_WAIT, a fifth of the CPU of a many-file sync.
const idleConnsPerHost = 64

// Identity names the place a connection writes to, for telling whether a
// saved state belongs to it: the kind and the bucket URL without credentials
// or query, or the absolute mount path.
func Identity(c Connection) string {
	where := c.Schema.Bucket
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		where = c.Schema.MountPath
		if abs, err := filepath.Abs(where); err == nil {
			where = abs
		}
	default:
		if u, err := url.Parse(where); err == nil {
			u.User, u.RawQuery, u.Fragment = nil, "", ""
			where = u.String()
		}
	}
	return c.Kind + " " + where
}

// Open opens the connection's bucket, rooted at the connection's prefix. It
// checks the configuration but not that the bucket exists; see Check.
func Open(ctx context.Context, c Connection, opts Options) (*blob.Bucket, error) {
	if opts.Getenv == nil {
		opts.Getenv = os.Getenv
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if opts.ForWriting && c.Schema.ReadOnly {
		return nil, configErrorf(c.Setting()+".schema.readOnly", "store %s is read-only; the artifacts store must be writable (set readOnly: false or choose another connection)", Describe(c))
	}
	creds, err := loadCredentials(c, opts.Getenv)
	if err != nil {
		return nil, err
	}
	var b *blob.Bucket
	var prefix string
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		b, err = openFolder(c)
	case KindMemory:
		b = memblob.OpenBucket(nil)
	default:
		var bu bucketURL
		bu, err = parseBucketURL(c.Kind, c.Schema.Bucket)
		if err != nil {
			return nil, configErrorf(c.Setting()+".schema.bucket", "%v", err)
		}
		prefix = bu.Prefix
		switch c.Kind {
		case KindS3:
			b, err = openS3(ctx, c, bu, creds)
		case KindGCS:
			b, err = openGCS(ctx, bu, creds)
		case KindWASB:
			b, err = openAzure(ctx, c, bu, creds)
		}
	}
	if err != nil {
		var ce *ConfigError
		if errors.As(err, &ce) {
			return nil, err
		}
		return nil, &UnavailableError{Store: Describe(c), Err: err}
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return b, nil
}

// Check verifies that the bucket exists and the credentials are accepted, so a
// bad store is reported at start-up rather than at the first upload.
func Check(ctx context.Context, b *blob.Bucket, c Connection) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ok, err := b.IsAccessible(ctx)
	if err != nil {
		return &UnavailableError{Store: Describe(c), Err: explain(err)}
	}
	if !ok {
		what := "bucket"
		if c.Kind == KindWASB {
			what = "container"
		}
		return &UnavailableError{Store: Describe(c), Err: fmt.Errorf("the %s does not exist", what)}
	}
	// IsAccessible only asks whether the bucket exists; a listing also proves
	// the credentials may read it.
	if _, _, err := b.ListPage(ctx, blob.FirstPageToken, 1, nil); err != nil {
		return &UnavailableError{Store: Describe(c), Err: explain(err)}
	}
	return nil
}

// explain turns an SDK error into a short sentence by its gcerrors code,
// keeping the SDK's text for the details.
func explain(err error) error {
	switch gcerrors.Code(err) {
	case gcerrors.PermissionDenied:
		return fmt.Errorf("access denied (check the credentials and their permissions): %w", err)
	case gcerrors.NotFound:
		return fmt.Errorf("not found: %w", err)
	case gcerrors.DeadlineExceeded:
		return fmt.Errorf("no answer in time (is the endpoint reachable?): %w", err)
	}
	return err
}

func openFolder(c Connection) (*blob.Bucket, error) {
	dir, err := filepath.Abs(c.Schema.MountPath)
	if err != nil {
		return nil, err
	}
	if c.Kind == KindVolumeClaim {
		// A claim is mounted by Kubernetes; a missing mount means a bad spec.
		if _, err := os.Stat(dir); err != nil {
			return nil, configErrorf(c.Setting()+".schema.mountPath", "volume claim %q is not mounted at %q: %v", c.Schema.VolumeClaim, dir, unwrapPathError(err))
		}
	}
	if fi, err := os.Stat(dir); err == nil && !fi.IsDir() {
		return nil, configErrorf(c.Setting()+".schema.mountPath", "%q is a file; the store must be a folder", dir)
	}
	return fileblob.OpenBucket(dir, &fileblob.Options{
		CreateDir: true,
		// Objects must be byte-identical files with nothing beside them, and
		// temp files must be on the same file system for the rename.
		Metadata:  fileblob.MetadataDontWrite,
		NoTempDir: true,
	})
}

func openS3(ctx context.Context, c Connection, bu bucketURL, creds credentials) (*blob.Bucket, error) {
	q := bu.Params
	var loadOpts []func(*awsconfig.LoadOptions) error
	region := q.Get("region")
	if region == "" {
		region = creds.get("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(region))
	}
	if p := q.Get("profile"); p != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(p))
	}
	if id := creds.get("AWS_ACCESS_KEY_ID"); id != "" {
		secret := creds.get("AWS_SECRET_ACCESS_KEY")
		if secret == "" {
			return nil, configErrorf(c.Setting()+".secret", "has AWS_ACCESS_KEY_ID but no AWS_SECRET_ACCESS_KEY")
		}
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			awscreds.NewStaticCredentialsProvider(id, secret, creds.get("AWS_SESSION_TOKEN"))))
	}
	switch q.Get("checksum") {
	case "", "when_supported":
	case "when_required":
		loadOpts = append(loadOpts, awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired))
	default:
		return nil, configErrorf(c.Setting()+".schema.bucket", "parameter checksum=%q is not valid; use when_supported or when_required", q.Get("checksum"))
	}
	loadOpts = append(loadOpts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = idleConnsPerHost
	})))
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible servers accept any region
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = creds.get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT")
	}
	pathStyle := endpoint != "" // S3-compatible servers rarely have wildcard DNS
	if v := q.Get("use_path_style"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, configErrorf(c.Setting()+".schema.bucket", "parameter use_path_style=%q is not true or false", v)
		}
	}
	disableHTTPS := false
	if v := q.Get("disable_https"); v != "" {
		if disableHTTPS, err = strconv.ParseBool(v); err != nil {
			return nil, configErrorf(c.Setting()+".schema.bucket", "parameter disable_https=%q is not true or false", v)
		}
	}
	if endpoint != "" && !strings.Contains(endpoint, "://") {
		scheme := "https://"
		if disableHTTPS {
			scheme = "http://"
		}
		endpoint = scheme + endpoint
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		o.EndpointOptions.DisableHTTPS = disableHTTPS
	})
	return s3blob.OpenBucket(ctx, client, bu.Bucket, &s3blob.Options{
		RequestChecksumCalculation: cfg.RequestChecksumCalculation,
	})
}

func openGCS(ctx context.Context, bu bucketURL, creds credentials) (*blob.Bucket, error) {
	var clientOpts []option.ClientOption
	// storage.NewClient honours STORAGE_EMULATOR_HOST by itself.
	if creds.getenv("STORAGE_EMULATOR_HOST") == "" {
		keyPath := creds.path("GC_KEY_PATH")
		if keyPath == "" {
			keyPath = creds.get("GC_KEY_PATH")
		}
		switch {
		case keyPath != "":
			data, err := os.ReadFile(keyPath)
			if err != nil {
				return nil, fmt.Errorf("read GC_KEY_PATH %q: %w", keyPath, unwrapPathError(err))
			}
			clientOpts = append(clientOpts, option.WithAuthCredentialsJSON(option.ServiceAccount, data))
		case creds.get("GC_KEYFILE_DICT") != "":
			clientOpts = append(clientOpts, option.WithAuthCredentialsJSON(option.ServiceAccount, []byte(creds.get("GC_KEYFILE_DICT"))))
		}
		// Otherwise: GOOGLE_APPLICATION_CREDENTIALS or workload identity, by the default chain.
	}
	client, err := storage.NewClient(ctx, clientOpts...)
	if err != nil {
		return nil, fmt.Errorf("create GCS client: %w", err)
	}
	return gcsblob.OpenBucket(ctx, nil, bu.Bucket, &gcsblob.Options{Client: client})
}

func openAzure(ctx context.Context, c Connection, bu bucketURL, creds credentials) (*blob.Bucket, error) {
	clientOpts := &container.ClientOptions{}
	clientOpts.Retry.TryTimeout = 10 * time.Minute
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = idleConnsPerHost, idleConnsPerHost
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	clientOpts.Transport = &http.Client{Transport: transport}
	connString := creds.get("AZURE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING")
	account := bu.Account
	if account == "" {
		account = creds.get("AZURE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT")
	}
	var client *container.Client
	var err error
	if connString != "" && creds.get("AZURE_ACCOUNT_KEY", "AZURE_STORAGE_KEY") == "" {
		client, err = container.NewClientFromConnectionString(connString, bu.Bucket, clientOpts)
		if err != nil {
			// The SDK's message may quote the string, which holds the key.
			return nil, configErrorf(c.Setting()+".secret", "AZURE_CONNECTION_STRING is not a valid Azure Storage connection string")
		}
		return azureblob.OpenBucket(ctx, client, nil)
	}
	if account == "" {
		return nil, configErrorf(c.Setting()+".schema.bucket", "names no storage account; write wasbs://container@account.blob.core.windows.net/ or set AZURE_ACCOUNT_NAME")
	}
	svcOpts := azureblob.ServiceURLOptions{
		AccountName:   account,
		StorageDomain: bu.Domain,
		Protocol:      bu.Params.Get("protocol"),
		SASToken:      strings.TrimPrefix(creds.get("AZURE_SAS_TOKEN", "AZURE_STORAGE_SAS_TOKEN"), "?"),
	}
	if svcOpts.StorageDomain == "" {
		svcOpts.StorageDomain = creds.get("AZURE_STORAGE_DOMAIN")
	}
	if v := bu.Params.Get("localemu"); v != "" {
		if svcOpts.IsLocalEmulator, err = strconv.ParseBool(v); err != nil {
			return nil, configErrorf(c.Setting()+".schema.bucket", "parameter localemu=%q is not true or false", v)
		}
	}
	if v := bu.Params.Get("cdn"); v != "" {
		if svcOpts.IsCDN, err = strconv.ParseBool(v); err != nil {
			return nil, configErrorf(c.Setting()+".schema.bucket", "parameter cdn=%q is not true or false", v)
		}
	}
	svcURL, err := azureblob.NewServiceURL(&svcOpts)
	if err != nil {
		return nil, configErrorf(c.Setting()+".schema.bucket", "%v", err)
	}
	containerURL := strings.TrimSuffix(strings.SplitN(string(svcURL), "?", 2)[0], "/") + "/" + bu.Bucket
	if svcOpts.SASToken != "" {
		containerURL += "?" + svcOpts.SASToken
	}
	switch key := creds.get("AZURE_ACCOUNT_KEY", "AZURE_STORAGE_KEY"); {
	case key != "":
		cred, kerr := azblob.NewSharedKeyCredential(account, key)
		if kerr != nil {
			return nil, configErrorf(c.Setting()+".secret", "AZURE_ACCOUNT_KEY is not a valid base64 account key")
		}
		client, err = container.NewClientWithSharedKeyCredential(containerURL, cred, clientOpts)
	case svcOpts.SASToken != "":
		client, err = container.NewClientWithNoCredential(containerURL, clientOpts)
	default:
		var cred azcore.TokenCredential
		cred, err = azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("no Azure credentials (set AZURE_ACCOUNT_KEY, AZURE_CONNECTION_STRING, AZURE_SAS_TOKEN, or a managed identity): %w", err)
		}
		client, err = container.NewClient(containerURL, cred, clientOpts)
	}
	if err != nil {
		return nil, err
	}
	return azureblob.OpenBucket(ctx, client, nil)
}

// Location says where a connection's objects live, for code that must talk
// to the SDK below gocloud (resumable uploads): the bucket or container, the
// key prefix inside it ("" or ending in "/"), and, for host_path and
// volume_claim, the folder.
func Location(c Connection) (bucket, prefix, dir string) {
	switch c.Kind {
	case KindHostPath, KindVolumeClaim:
		return "", "", c.Schema.MountPath
	}
	bu, err := parseBucketURL(c.Kind, c.Schema.Bucket)
	if err != nil {
		return "", "", ""
	}
	if bu.Prefix != "" {
		prefix = bu.Prefix + "/"
	}
	return bu.Bucket, prefix, ""
}
