package stores

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
)

// credentialParams are the URL query parameters that carry a credential: an
// Azure SAS (sig, and the fields that scope it), an S3 or GCS presigned URL,
// a bearer token or API key, and a GCS resumable upload's session id.
var credentialParams = []string{
	"sig", "se", "sp", "st", "sv", "sr", "ss", "srt", "spr", "skoid", "sktid", "skt", "ske", "sks", "skv",
	"x-amz-signature", "x-amz-credential", "x-amz-security-token",
	"x-goog-signature", "x-goog-credential",
	"token", "access_token", "key", "upload_id",
}

// credentialPatterns match the credentials an SDK error can quote. Each
// regexp has two groups, the name that is kept and the secret value, which is
// replaced by "REDACTED" and then suffix.
var credentialPatterns = []struct {
	re     *regexp.Regexp
	suffix string
}{
	// Connection-string keys: the value runs to the next ';'. A SAS inside a
	// connection string (SharedAccessSignature=sv=...&sig=...) goes whole.
	{re: regexp.MustCompile(`(?i)(\b(?:AccountKey|SharedAccessSignature|SharedAccessKey)=)([^;\s"'<>]*)`)},
	// Query parameters, plain or percent-encoded (a URL quoted inside
	// another); the value runs to the next parameter. A parameter that
	// begins a string or a word counts too: a SAS token is often shown
	// without its '?'.
	{re: regexp.MustCompile(`(?i)((?:^|[?&\s"']|%3F|%26)(?:` + strings.Join(credentialParams, "|") + `)(?:=|%3D))` +
		`((?:[^&;%\s"'<>]|%(?:[013-9a-f][0-9a-f]|2[0-57-9a-f]))*)`)},
	// A URL's password: scheme://user:password@host. The whole userinfo goes,
	// since the user part is then an access key id. A userinfo without a
	// password is kept: in wasbs://container@account it names the container.
	{re: regexp.MustCompile(`(://)([^/?#@:\s"'<>]*:[^/?#@\s"'<>]*)@`), suffix: "@"},
}

// redacted replaces what RedactString removes.
const redacted = "REDACTED"

// RedactString removes credentials from s: the values of credential-bearing
// URL query parameters (sig, se, sp and the other fields of an Azure SAS,
// X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, X-Goog-Signature,
// token, access_token, key, upload_id), the AccountKey,
// SharedAccessSignature and SharedAccessKey of a connection string, and a
// URL's user:password. Names and the rest of the text are kept.
func RedactString(s string) string {
	for _, p := range credentialPatterns {
		s = p.re.ReplaceAllStringFunc(s, func(m string) string {
			sub := p.re.FindStringSubmatch(m)
			if sub[2] == "" || sub[2] == redacted {
				return m
			}
			return sub[1] + redacted + p.suffix
		})
	}
	return s
}

// Redact returns err with its message cleaned by RedactString. The result
// unwraps to err, so errors.Is, errors.As and gcerrors.Code still see the
// SDK's error; only its text changes. Where err carries the store's HTTP
// answer (the AWS SDK's errors), a refusal also matches ErrRefused. Every
// error that leaves this package and its backends is redacted so.
func Redact(err error) error {
	return storeError(nil, err)
}

// ErrRefused matches (errors.Is) a store's answer that trying again will not
// change (see RefusedAnswer): a caller that retries stops at once. The error
// keeps the store's text.
var ErrRefused = errors.New("refused by the store")

// Refuser is implemented by a Driver that can tell, from its SDK's errors,
// a refusal (ErrRefused) from a failure that may pass.
type Refuser interface {
	Refused(err error) bool
}

// storeError is err as it leaves this package: redacted, and marked as
// ErrRefused when the store refused the request (asked of drv when it is a
// Refuser, else of the HTTP answer where the SDK's error exposes it).
func storeError(drv Driver, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	refused := errors.Is(err, ErrRefused)
	if !refused {
		if r, ok := drv.(Refuser); ok {
			refused = r.Refused(err)
		} else {
			refused = refusedHTTP(err)
		}
	}
	msg := err.Error()
	clean := RedactString(msg)
	if clean == msg && !refused {
		return err
	}
	return &redactedError{msg: clean, err: err, refused: refused}
}

// refusedHTTP tells a refusal by the answer in an error that exposes its
// HTTP status as HTTPStatusCode() and its code as ErrorCode(), as the AWS
// SDK's errors do.
func refusedHTTP(err error) bool {
	var hs interface{ HTTPStatusCode() int }
	if !errors.As(err, &hs) {
		return false
	}
	code := ""
	var ec interface{ ErrorCode() string }
	if errors.As(err, &ec) {
		code = ec.ErrorCode()
	}
	return RefusedAnswer(hs.HTTPStatusCode(), code)
}

// RefusedAnswer reports whether a store's answer, its HTTP status and the
// error code the service gave (S3's Code, Azure's x-ms-error-code; "" when
// none), is a refusal that trying again will not change: a 4xx, or a
// feature the service does not support. Not refusals: 408 Request Timeout
// and 429 Too Many Requests, a checksum that did not match (the bytes were
// damaged on the way: a resend fixes it), a request that timed out or came
// incomplete, a clock skew the SDK corrects, and an upload whose parts or
// blocks are gone (the next try of a resumable upload starts it over).
func RefusedAnswer(status int, code string) bool {
	if code == "FeatureNotSupported" {
		return true
	}
	if status < 400 || status >= 500 || status == 408 || status == 429 {
		return false
	}
	switch code {
	case "BadDigest", "Md5Mismatch", "Crc64Mismatch", // a checksum did not match
		"RequestTimeout", "IncompleteBody", "RequestTimeTooSkewed", "OperationAborted",
		"NoSuchUpload", "InvalidPart", "InvalidBlockList": // parts or blocks gone
		return false
	}
	return true
}

// redactedError is an error as it leaves the package: its text redacted,
// and whether the store refused it.
type redactedError struct {
	msg     string
	err     error
	refused bool
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// Is makes a refusal match ErrRefused.
func (e *redactedError) Is(target error) bool { return e.refused && target == ErrRefused }

// redactingUploader is a backend's Uploader whose errors leave the package
// through storeError, and whose objects carry the replica's name when it is
// set (Target.ForReplica).
type redactingUploader struct {
	u       Uploader
	drv     Driver
	replica string
}

func (r redactingUploader) Upload(ctx context.Context, src io.ReaderAt, p *Progress, metadata map[string]string, concurrency int, journal Journal) ([]byte, error) {
	sum, err := r.u.Upload(ctx, src, p, withReplica(metadata, r.replica), concurrency, journal)
	return sum, storeError(r.drv, err)
}

func (r redactingUploader) Abort(ctx context.Context, p Progress) error {
	return storeError(r.drv, r.u.Abort(ctx, p))
}
