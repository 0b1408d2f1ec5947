package preempt

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// GCE's metadata server.
const (
	gceDefaultHost   = "169.254.169.254"
	gcePreemptedPath = "/computeMetadata/v1/instance/preempted"
	// gceNotice is how long GCE gives a preempted machine to stop.
	gceNotice = 30 * time.Second
	// gceWait is how long one hanging GET waits for a change.
	gceWait = 60 * time.Second
)

// gceEndpoint is the metadata server as cloud.google.com/go/compute/metadata
// finds it.
func gceEndpoint(getenv func(string) string) string {
	host := getenv(GCEHostEnv)
	if host == "" {
		host = gceDefaultHost
	}
	return "http://" + strings.TrimRight(host, "/")
}

// watchGCE asks for instance/preempted, then waits on it with hanging GETs
// (wait_for_change, from the last ETag), and reports its turn to TRUE.
func (w *Watcher) watchGCE(ctx context.Context, notify func(Notice)) {
	etag, notified := "", false
	w.every(ctx, func(ctx context.Context) error {
		for {
			value, next, err := w.gceGet(ctx, etag)
			if err != nil {
				etag = "" // start over with a plain GET
				return err
			}
			etag = next
			if value == "TRUE" && !notified {
				notified = true
				notify(Notice{Cloud: GCP, Kind: Interruption, Deadline: w.now().Add(gceNotice)})
			}
			if etag == "" || ctx.Err() != nil {
				return nil // no ETag to wait on: poll
			}
		}
	})
}

// gceGet reads instance/preempted: at once with no etag, else once it
// differs from etag or gceWait passed.
func (w *Watcher) gceGet(ctx context.Context, etag string) (value, nextETag string, err error) {
	u := w.endpoint + gcePreemptedPath
	timeout := requestTimeout
	if etag != "" {
		u += "?" + url.Values{"wait_for_change": {"true"}, "last_etag": {etag}, "timeout_sec": {fmt.Sprint(int(gceWait.Seconds()))}}.Encode()
		timeout += gceWait
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Metadata-Flavor", "Google")
	resp, err := w.client.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
	if err != nil {
		return "", "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", "", &statusError{url: gcePreemptedPath, status: resp.StatusCode}
	}
	return strings.ToUpper(strings.TrimSpace(string(body))), resp.Header.Get("Etag"), nil
}
