package preempt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// EC2's instance metadata service (IMDSv2).
const (
	awsDefaultEndpoint = "http://169.254.169.254"
	awsIPv6Endpoint    = "http://[fd00:ec2::254]"
	awsTokenPath       = "/latest/api/token"
	awsActionPath      = "/latest/meta-data/spot/instance-action"
	awsRebalancePath   = "/latest/meta-data/events/recommendations/rebalance"
	awsTokenTTLHeader  = "X-aws-ec2-metadata-token-ttl-seconds"
	awsTokenHeader     = "X-aws-ec2-metadata-token"
	awsTokenTTL        = 6 * time.Hour
)

// awsEndpoint is the IMDS endpoint as the AWS SDKs choose it.
func awsEndpoint(getenv func(string) string) string {
	if e := getenv(AWSEndpointEnv); e != "" {
		return strings.TrimRight(e, "/")
	}
	if strings.EqualFold(getenv(AWSEndpointModeEnv), "IPv6") {
		return awsIPv6Endpoint
	}
	return awsDefaultEndpoint
}

// awsSession holds the IMDSv2 session token.
type awsSession struct {
	token   string
	expires time.Time
}

// watchAWS polls the Spot interruption notice and the rebalance
// recommendation, each reported once (again if its time changes).
func (w *Watcher) watchAWS(ctx context.Context, notify func(Notice)) {
	var s awsSession
	seen := map[Kind]string{}
	w.every(ctx, func(ctx context.Context) error {
		for _, kind := range []Kind{Interruption, Rebalance} {
			n, ok, err := w.awsLook(ctx, &s, kind)
			if err != nil {
				return err
			}
			if ok && seen[kind] != n.Deadline.String()+n.Detail {
				seen[kind] = n.Deadline.String() + n.Detail
				notify(n)
			}
		}
		return nil
	})
}

// awsLook reads one notice item; ok is false when the item is absent (404).
func (w *Watcher) awsLook(ctx context.Context, s *awsSession, kind Kind) (Notice, bool, error) {
	path := awsActionPath
	if kind == Rebalance {
		path = awsRebalancePath
	}
	body, err := w.awsGet(ctx, s, path)
	if isStatus(err, http.StatusUnauthorized) {
		s.token = "" // expired or revoked: a new one, once
		body, err = w.awsGet(ctx, s, path)
	}
	if isStatus(err, http.StatusNotFound) {
		return Notice{}, false, nil
	}
	if err != nil {
		return Notice{}, false, err
	}
	n := Notice{Cloud: AWS, Kind: kind}
	if kind == Rebalance {
		var r struct {
			NoticeTime string `json:"noticeTime"`
		}
		if err := json.Unmarshal(body, &r); err != nil {
			return Notice{}, false, fmt.Errorf("%s: %w", path, err)
		}
		return n, true, nil
	}
	var a struct {
		Action string `json:"action"`
		Time   string `json:"time"`
	}
	if err := json.Unmarshal(body, &a); err != nil {
		return Notice{}, false, fmt.Errorf("%s: %w", path, err)
	}
	n.Detail = a.Action
	if t, err := time.Parse(time.RFC3339, a.Time); err == nil {
		n.Deadline = t
	}
	return n, true, nil
}

// awsGet reads path with the session's token, getting one first when
// there is none or it is about to expire.
func (w *Watcher) awsGet(ctx context.Context, s *awsSession, path string) ([]byte, error) {
	if s.token == "" || w.now().After(s.expires) {
		if err := w.awsToken(ctx, s); err != nil {
			return nil, err
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.endpoint+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(awsTokenHeader, s.token)
	return w.do(req)
}

// awsToken gets a session token: PUT /latest/api/token with its TTL.
func (w *Watcher) awsToken(ctx context.Context, s *awsSession) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, w.endpoint+awsTokenPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set(awsTokenTTLHeader, fmt.Sprint(int(awsTokenTTL.Seconds())))
	body, err := w.do(req)
	if err != nil {
		return fmt.Errorf("IMDSv2 session token (in a container, the instance's metadata hop limit must be 2 or more): %w", err)
	}
	s.token = strings.TrimSpace(string(body))
	s.expires = w.now().Add(awsTokenTTL - time.Minute)
	return nil
}

// do makes a request bounded by requestTimeout and returns the body of a
// 200, else a statusError.
func (w *Watcher) do(req *http.Request) ([]byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), requestTimeout)
	defer cancel()
	return w.doUntil(req.WithContext(ctx))
}

// doUntil is do under the request's own context.
func (w *Watcher) doUntil(req *http.Request) ([]byte, error) {
	resp, err := w.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &statusError{url: req.URL.Path, status: resp.StatusCode}
	}
	return body, nil
}

// requestTimeout bounds one request to a metadata service, which answers in
// milliseconds on its machine.
const requestTimeout = 5 * time.Second
