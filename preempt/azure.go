package preempt

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
)

// Azure's Scheduled Events, of the instance metadata service.
const (
	azureDefaultEndpoint = "http://169.254.169.254"
	azureEventsPath      = "/metadata/scheduledevents?api-version=2020-07-01"
)

// azureEndpoint is the instance metadata service: AzureEndpointEnv, else
// its link-local address.
func azureEndpoint(getenv func(string) string) string {
	if e := getenv(AzureEndpointEnv); e != "" {
		return strings.TrimRight(e, "/")
	}
	return azureDefaultEndpoint
}

// azureEvents is the Scheduled Events document.
type azureEvents struct {
	DocumentIncarnation int `json:"DocumentIncarnation"`
	Events              []struct {
		EventID     string   `json:"EventId"`
		EventType   string   `json:"EventType"`
		EventStatus string   `json:"EventStatus"`
		Resources   []string `json:"Resources"`
		NotBefore   string   `json:"NotBefore"`
	} `json:"Events"`
}

// watchAzure polls the Scheduled Events and reports each Preempt event once.
// (The first request of a machine turns the service on, and may take a
// while to answer.)
func (w *Watcher) watchAzure(ctx context.Context, notify func(Notice)) {
	seen := map[string]bool{}
	w.every(ctx, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, w.endpoint+azureEventsPath, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Metadata", "true")
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		body, err := w.doUntil(req.WithContext(ctx))
		if err != nil {
			return err
		}
		var doc azureEvents
		if err := json.Unmarshal(body, &doc); err != nil {
			return err
		}
		for _, e := range doc.Events {
			if !strings.EqualFold(e.EventType, "Preempt") || seen[e.EventID] {
				continue
			}
			seen[e.EventID] = true
			n := Notice{Cloud: Azure, Kind: Interruption, Detail: e.EventID}
			// NotBefore is an RFC 1123 time ("Mon, 19 Sep 2016 18:29:47
			// GMT"), empty once the event has started.
			if t, err := http.ParseTime(e.NotBefore); err == nil {
				n.Deadline = t
			} else {
				n.Deadline = w.now()
			}
			notify(n)
		}
		return nil
	})
}
