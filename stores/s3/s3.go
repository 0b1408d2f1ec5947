// Package s3 is the store backend for S3 and S3-compatible servers
// (aws-sdk-go-v2 through gocloud's s3blob). Beyond the bucket it provides the
// resumable large-object upload: an S3 multipart upload whose parts carry a
// CRC32 the server verifies, completed with the whole file's CRC32, which
// the server checks against the parts and keeps as the object's full-object
// checksum (a Content-MD5 per part instead when the client was built with
// checksum=when_required, for servers without S3's flexible checksums). On
// resume the server's ListParts is the truth; an upload the server no longer
// knows starts over. Other multipart uploads of the same key left by earlier
// attempts are aborted once the object is complete; a bucket lifecycle rule
// (AbortIncompleteMultipartUpload) still cleans uploads abandoned for good.
package s3

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"

	"github.com/mlsidecar/collector/stores"
)

func init() { stores.Register(stores.KindS3, backend{}) }

type backend struct{}

func (b backend) Open(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials, log *slog.Logger) (stores.Driver, error) {
	return b.OpenPooled(ctx, c, loc, creds, log, stores.IdleConnsPerHost)
}

// OpenPooled is Open with a client that keeps idleConns idle connections.
func (backend) OpenPooled(ctx context.Context, c stores.Connection, loc stores.BucketURL, creds stores.Credentials, log *slog.Logger, idleConns int) (stores.Driver, error) {
	b, client, err := openS3(ctx, c, loc, creds, log, idleConns)
	if err != nil {
		return nil, err
	}
	return &driver{bucket: b, client: client, name: loc.Bucket}, nil
}

// driver is an open S3 bucket.
type driver struct {
	bucket *blob.Bucket
	client *s3.Client
	name   string
}

func (d *driver) Bucket() *blob.Bucket { return d.bucket }

func (d *driver) Resumable(prefix string) stores.Uploader {
	return &s3Uploader{
		client:    d.client,
		bucket:    d.name,
		prefix:    prefix,
		checksums: d.client.Options().RequestChecksumCalculation != aws.RequestChecksumCalculationWhenRequired,
	}
}

// Verify leaves S3's checks to the SDK: a CRC32 on every request unless the
// client was built with checksum=when_required, and the Content-MD5 of sums
// that the caller set.
func (d *driver) Verify(*blob.WriterOptions, stores.Sums) {}

// Limits are S3's multipart limits: 10,000 parts of 5 MiB to 5 GiB (the last
// one smaller), objects up to 5 TiB.
func (d *driver) Limits() stores.Limits {
	return stores.Limits{MaxParts: s3MaxParts, MinPartSize: 5 << 20, MaxPartSize: 5 << 30, MaxObjectSize: 5 << 40}
}

// StoredChecksum returns the full-object CRC32 or CRC32C the server keeps
// for the object, which every HEAD asks for (headWithChecksums). A composite
// checksum (a checksum of the parts' checksums) is not one.
func (backend) StoredChecksum(attrs *blob.Attributes) (stores.ObjectChecksum, bool) {
	var out s3.HeadObjectOutput
	if !attrs.As(&out) || out.ChecksumType != types.ChecksumTypeFullObject {
		return stores.ObjectChecksum{}, false
	}
	for _, c := range []struct {
		value      *string
		castagnoli bool
	}{{out.ChecksumCRC32, false}, {out.ChecksumCRC32C, true}} {
		b, err := base64.StdEncoding.DecodeString(aws.ToString(c.value))
		if err == nil && len(b) == 4 {
			return stores.ObjectChecksum{CRC32: binary.BigEndian.Uint32(b), Castagnoli: c.castagnoli}, true
		}
	}
	return stores.ObjectChecksum{}, false
}

// headWithChecksums makes every HeadObject ask for the object's checksums
// (gocloud's Attributes does not), so that StoredChecksum finds them.
func headWithChecksums(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("collectorHeadChecksums",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if h, ok := in.Parameters.(*s3.HeadObjectInput); ok && h.ChecksumMode == "" {
				h.ChecksumMode = types.ChecksumModeEnabled
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

func openS3(ctx context.Context, c stores.Connection, bu stores.BucketURL, creds stores.Credentials, log *slog.Logger, idleConns int) (*blob.Bucket, *s3.Client, error) {
	q := bu.Params
	loadOpts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(sdkLogger{log.With("component", "s3")})}
	region := q.Get("region")
	if region == "" {
		region = creds.Get("AWS_REGION", "AWS_DEFAULT_REGION")
	}
	if region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(region))
	}
	if p := q.Get("profile"); p != "" {
		loadOpts = append(loadOpts, awsconfig.WithSharedConfigProfile(p))
	}
	if id := creds.Get("AWS_ACCESS_KEY_ID"); id != "" {
		secret := creds.Get("AWS_SECRET_ACCESS_KEY")
		if secret == "" {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".secret", "has AWS_ACCESS_KEY_ID but no AWS_SECRET_ACCESS_KEY")
		}
		loadOpts = append(loadOpts, awsconfig.WithCredentialsProvider(
			awscreds.NewStaticCredentialsProvider(id, secret, creds.Get("AWS_SESSION_TOKEN"))))
	}
	switch q.Get("checksum") {
	case "", "when_supported":
	case "when_required":
		loadOpts = append(loadOpts, awsconfig.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired))
	default:
		return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "parameter checksum=%q is not valid; use when_supported or when_required", q.Get("checksum"))
	}
	loadOpts = append(loadOpts, awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConns, t.MaxIdleConnsPerHost = max(t.MaxIdleConns, idleConns), idleConns
	})))
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1" // S3-compatible servers accept any region
	}
	endpoint := q.Get("endpoint")
	if endpoint == "" {
		endpoint = creds.Get("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT")
	}
	pathStyle := endpoint != "" // S3-compatible servers rarely have wildcard DNS
	if v := q.Get("use_path_style"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "parameter use_path_style=%q is not true or false", v)
		}
	}
	disableHTTPS := false
	if v := q.Get("disable_https"); v != "" {
		if disableHTTPS, err = strconv.ParseBool(v); err != nil {
			return nil, nil, stores.ConfigErrorf(c.Setting()+".schema.bucket", "parameter disable_https=%q is not true or false", v)
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
		o.APIOptions = append(o.APIOptions, headWithChecksums)
		// The SDK does not ask for an object's checksum on every GET, and
		// so does not warn about each object that has none (a small
		// object's PUT carries its Content-MD5 only): what reads an object
		// checks its bytes itself, a restore against the SHA-256 in the
		// metadata or the full-object CRC32 that HEAD returns.
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	})
	b, err := s3blob.OpenBucket(ctx, client, bu.Bucket, &s3blob.Options{
		RequestChecksumCalculation: cfg.RequestChecksumCalculation,
	})
	return b, client, err
}

// sdkLogger passes the AWS SDK's own messages (its fallback to IMDSv1, a
// response it could not read) to the collector's log, in its format and with
// URLs' credentials removed, instead of the SDK's plain lines on stderr.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, stores.RedactString(fmt.Sprintf(format, v...)))
}
