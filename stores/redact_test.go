package stores_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"context"

	"gocloud.dev/blob/memblob"
	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/stores"
)

func TestRedactString(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		want   string
		secret []string // must not be in the result
	}{
		{
			name:   "Azure SAS in a request URL",
			in:     `Get "https://acct.blob.core.windows.net/c?restype=container&sv=2022-11-02&ss=b&srt=co&sp=rwdl&se=2030-01-01T00:00:00Z&st=2024-01-01&spr=https&sig=AbC%2Bd%2Fe%3D": dial tcp 127.0.0.1:1: connect: connection refused`,
			want:   `Get "https://acct.blob.core.windows.net/c?restype=container&sv=REDACTED&ss=REDACTED&srt=REDACTED&sp=REDACTED&se=REDACTED&st=REDACTED&spr=REDACTED&sig=REDACTED": dial tcp 127.0.0.1:1: connect: connection refused`,
			secret: []string{"AbC%2Bd%2Fe%3D", "2030-01-01", "rwdl"},
		},
		{
			name: "user delegation SAS",
			in:   "https://a.blob.core.windows.net/c/k?skoid=0000-1111&sktid=2222&skt=2024&ske=2025&sks=b&skv=2022&sig=zzz",
			want: "https://a.blob.core.windows.net/c/k?skoid=REDACTED&sktid=REDACTED&skt=REDACTED&ske=REDACTED&sks=REDACTED&skv=REDACTED&sig=REDACTED",
		},
		{
			name:   "SAS token without its question mark",
			in:     "AZURE_SAS_TOKEN sv=2022-11-02&sig=secretsig is not valid",
			want:   "AZURE_SAS_TOKEN sv=REDACTED&sig=REDACTED is not valid",
			secret: []string{"secretsig"},
		},
		{
			name:   "S3 presigned URL",
			in:     "PUT https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAEXAMPLE%2F20240101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Security-Token=FwoGZXIvYXdzEXAMPLE&X-Amz-Signature=deadbeef",
			want:   "PUT https://b.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED",
			secret: []string{"AKIAEXAMPLE", "FwoGZXIvYXdzEXAMPLE", "deadbeef"},
		},
		{
			name: "GCS signed URL, API key, token and upload session",
			in:   "https://storage.googleapis.com/b/o?X-Goog-Credential=sa%40p&X-Goog-Signature=abc&key=AIzaKEY&access_token=ya29.tok&token=t0k&upload_id=ADPycdSESSION",
			want: "https://storage.googleapis.com/b/o?X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED&key=REDACTED&access_token=REDACTED&token=REDACTED&upload_id=REDACTED",
		},
		{
			name:   "URL quoted inside another (percent-encoded)",
			in:     "https://proxy/?target=https%3A%2F%2Fa.blob%2Fc%3Fsv%3D1%26sig%3DSeCrEt%252B%26comp%3Dlist",
			want:   "https://proxy/?target=https%3A%2F%2Fa.blob%2Fc%3Fsv%3DREDACTED%26sig%3DREDACTED%26comp%3Dlist",
			secret: []string{"SeCrEt"},
		},
		{
			name:   "connection string with an account key",
			in:     "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0a2V5PT0=;EndpointSuffix=core.windows.net",
			want:   "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=REDACTED;EndpointSuffix=core.windows.net",
			secret: []string{"c2VjcmV0a2V5PT0="},
		},
		{
			name:   "connection string with a SAS",
			in:     "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2022-11-02&ss=b&sig=SASsig%3D",
			want:   "BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=REDACTED",
			secret: []string{"SASsig"},
		},
		{
			name: "Service Bus style shared access key",
			in:   "Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccessKey=abc=",
			want: "Endpoint=sb://x/;SharedAccessKeyName=root;SharedAccessKey=REDACTED",
		},
		{
			name:   "password in a URL",
			in:     `Get "http://AKIAID:s3cr3t@127.0.0.1:9000/bucket": dial tcp`,
			want:   `Get "http://REDACTED@127.0.0.1:9000/bucket": dial tcp`,
			secret: []string{"s3cr3t", "AKIAID"},
		},
		{
			name: "wasbs container is not a credential",
			in:   "store wasb wasbs://container@acct.blob.core.windows.net/runs: the container does not exist",
			want: "store wasb wasbs://container@acct.blob.core.windows.net/runs: the container does not exist",
		},
		{
			name: "nothing to redact",
			in:   `upload "model/key=1/token.bin": PUT http://127.0.0.1:1/c/k?comp=block&blockid=YWJj: 503`,
			want: `upload "model/key=1/token.bin": PUT http://127.0.0.1:1/c/k?comp=block&blockid=YWJj: 503`,
		},
		{
			name: "already redacted",
			in:   "https://a/c?sig=REDACTED&AccountKey=REDACTED",
			want: "https://a/c?sig=REDACTED&AccountKey=REDACTED",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := stores.RedactString(tt.in)
			if got != tt.want {
				t.Errorf("RedactString(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
			for _, s := range tt.secret {
				if strings.Contains(got, s) {
					t.Errorf("%q is still in %q", s, got)
				}
			}
			if again := stores.RedactString(got); again != got {
				t.Errorf("not idempotent: %q -> %q", got, again)
			}
		})
	}
}

func TestRedactKeepsTheError(t *testing.T) {
	b := memblob.OpenBucket(nil)
	defer b.Close()
	_, sdkErr := b.ReadAll(context.Background(), "missing")
	err := stores.Redact(fmt.Errorf("read https://a/c?sig=topsecret: %w", sdkErr))
	if strings.Contains(err.Error(), "topsecret") {
		t.Errorf("secret in %q", err)
	}
	if gcerrors.Code(err) != gcerrors.NotFound {
		t.Errorf("gcerrors.Code = %v, want NotFound", gcerrors.Code(err))
	}
	if errors.Is(err, stores.ErrRefused) {
		t.Errorf("%v matches ErrRefused", err)
	}
	if stores.Redact(nil) != nil {
		t.Error("Redact(nil) is not nil")
	}
}

func TestRefusedAnswer(t *testing.T) {
	tests := []struct {
		status int
		code   string
		want   bool
	}{
		{400, "InvalidArgument", true},
		{403, "AuthenticationFailed", true},
		{404, "ContainerNotFound", true},
		{400, "KeyTooLongError", true},
		{500, "FeatureNotSupported", true},
		{408, "", false},
		{429, "", false},
		{500, "InternalError", false},
		{503, "SlowDown", false},
		{400, "BadDigest", false},
		{400, "Md5Mismatch", false},
		{400, "RequestTimeout", false},
		{404, "NoSuchUpload", false},
		{400, "InvalidBlockList", false},
	}
	for _, tt := range tests {
		if got := stores.RefusedAnswer(tt.status, tt.code); got != tt.want {
			t.Errorf("RefusedAnswer(%d, %q) = %v, want %v", tt.status, tt.code, got, tt.want)
		}
	}
}
