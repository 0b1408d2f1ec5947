package azure

import (
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/mlsidecar/collector/stores"
)

// The SDK sets request headers by these exact names, not canonicalised: they
// are read and written through the header map.
const (
	// crc64Header carries a block's CRC64 (TransferValidationTypeComputeCRC64).
	crc64Header = "x-ms-content-crc64"
	// md5Header carries a block's MD5 (TransferValidationTypeMD5).
	md5Header = "Content-MD5"
	// errorCodeHeader carries the service's error code (an answer's headers
	// are canonicalised: read with Get).
	errorCodeHeader = "x-ms-error-code"
)

// blockChecks is how the blocks of one connection are checked by the
// service: a CRC64 each, unless the service refuses it (Azurite in its
// default strict mode answers 500 FeatureNotSupported); then a Content-MD5
// each, which every Azure endpoint takes. The first answer to a block with a
// CRC64 decides, for the connection.
type blockChecks struct {
	state atomic.Int32 // checksUnknown, checksCRC64 or checksMD5
}

const (
	checksUnknown = iota
	checksCRC64
	checksMD5
)

// useMD5 reports whether the blocks go with a Content-MD5.
func (c *blockChecks) useMD5() bool { return c.state.Load() == checksMD5 }

// clientOptions are the container client's options: an HTTP client that
// keeps idleConns idle connections and redacts the URLs it quotes, the
// CRC64 to MD5 fallback of checks, and no retry of a refused feature.
func clientOptions(checks *blockChecks, idleConns int) *container.ClientOptions {
	opts := &container.ClientOptions{}
	opts.Retry.TryTimeout = 10 * time.Minute
	opts.Retry.ShouldRetry = shouldRetry
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns, transport.MaxIdleConnsPerHost = idleConns, idleConns
	transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	opts.Transport = redactingClient{&http.Client{Transport: transport}}
	// A per-call policy runs before the retries and before the request is
	// signed (a shared key signs Content-MD5 and every x-ms- header).
	opts.PerCallPolicies = append(opts.PerCallPolicies, crc64Fallback{checks})
	return opts
}

// retryStatus are the answers the SDK retries by default.
var retryStatus = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
	http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// shouldRetry is the SDK's retry rule (a failed request, or one of
// retryStatus), less a feature the service does not support: Azurite's 500
// FeatureNotSupported is as final as a 4xx.
func shouldRetry(resp *http.Response, err error) bool {
	if err != nil {
		return true
	}
	if resp.Header.Get(errorCodeHeader) == "FeatureNotSupported" {
		return false
	}
	return slices.Contains(retryStatus, resp.StatusCode)
}

// crc64Fallback sends a request that carries a CRC64 (Put Block) with a
// Content-MD5 instead where the connection's service refuses CRC64. Until
// the service has answered a block with a CRC64, each such request is sent
// from a copy of its body: the first refusal switches the connection to MD5
// and sends the block again at once, from the copy, while the transport may
// still be reading the refused request's body.
type crc64Fallback struct {
	checks *blockChecks
}

func (f crc64Fallback) Do(req *policy.Request) (*http.Response, error) {
	if _, ok := req.Raw().Header[crc64Header]; !ok {
		return req.Next()
	}
	switch f.checks.state.Load() {
	case checksCRC64:
		return req.Next()
	case checksMD5:
		// Nothing has sent the body yet: it is read in place.
		h := md5.New()
		if err := readBody(req, h); err != nil {
			return nil, err
		}
		setMD5(req, h.Sum(nil))
		return req.Next()
	}
	data := bytes.NewBuffer(make([]byte, 0, max(req.Raw().ContentLength, 0)))
	if err := readBody(req, data); err != nil {
		return nil, err
	}
	if err := setBody(req, data.Bytes()); err != nil {
		return nil, err
	}
	resp, err := req.Next()
	switch {
	case err != nil:
		return resp, err
	case crc64Refused(resp):
		f.checks.state.Store(checksMD5)
		runtime.Drain(resp)
		if err := setBody(req, data.Bytes()); err != nil {
			return nil, err
		}
		sum := md5.Sum(data.Bytes())
		setMD5(req, sum[:])
		return req.Next()
	case resp.StatusCode < 300:
		f.checks.state.CompareAndSwap(checksUnknown, checksCRC64)
	}
	return resp, err
}

// readBody copies the body of req, which nothing has sent yet, to w.
func readBody(req *policy.Request, w io.Writer) error {
	body := req.Body()
	if body == nil {
		return errors.New("azure: a request with a CRC64 has no body")
	}
	if _, err := body.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.Copy(w, body); err != nil {
		return err
	}
	return req.RewindBody()
}

// setBody makes a new reader of data the body of req.
func setBody(req *policy.Request, data []byte) error {
	return req.SetBody(streaming.NopCloser(bytes.NewReader(data)), req.Raw().Header.Get("Content-Type"))
}

// setMD5 gives req the MD5 of its body, in place of its CRC64.
func setMD5(req *policy.Request, sum []byte) {
	delete(req.Raw().Header, crc64Header)
	req.Raw().Header[md5Header] = []string{base64.StdEncoding.EncodeToString(sum)}
}

// crc64Refused tells whether the service refused a request for its CRC64.
func crc64Refused(resp *http.Response) bool {
	switch resp.Header.Get(errorCodeHeader) {
	case "FeatureNotSupported", "UnsupportedHeader":
		return true
	}
	return false
}

// redactingClient sends the SDK's requests. A request that fails before an
// answer comes back quotes its URL (*url.Error), with the SAS token when the
// connection uses one; the URL is redacted there, so no caller of the
// container or its bucket, restore included, sees the token.
type redactingClient struct {
	c *http.Client
}

func (r redactingClient) Do(req *http.Request) (*http.Response, error) {
	resp, err := r.c.Do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		ue.URL = stores.RedactString(ue.URL)
	}
	return resp, err
}

// Refused implements stores.Refuser: an answer of the service that trying
// again will not change (stores.RefusedAnswer).
func (d *driver) Refused(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && stores.RefusedAnswer(re.StatusCode, re.ErrorCode)
}
