package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/mlsidecar/collector/internal/errbody"
)

// DefaultSocket is where the engine listens unless told otherwise.
const DefaultSocket = "/var/run/docker.sock"

// ErrNotFound is what a call about a container the engine does not know
// returns (errors.Is).
var ErrNotFound = errors.New("no such container")

// Error is the engine's answer to a request it refused: its HTTP status and
// the message of its JSON error body.
type Error struct {
	Op      string // "inspect", "logs", "stats"
	Status  int
	Message string
}

func (e *Error) Error() string {
	return fmt.Sprintf("docker %s: %d %s: %s", e.Op, e.Status, http.StatusText(e.Status), e.Message)
}

// Is makes errors.Is(err, ErrNotFound) true for the engine's 404.
func (e *Error) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Client talks to one engine through its unix socket. It is safe for
// concurrent use.
type Client struct {
	// Self is the container this process runs in, by ID or name, for
	// Find's compose lookup; when empty, Find works it out on first use.
	// Set it before the first Find.
	Self string

	socket string
	http   *http.Client

	mu           sync.Mutex
	projectName  string // the compose project Self belongs to
	projectKnown bool
}

// New returns a client of the engine listening on socket ("" is
// DefaultSocket). It connects on the first call.
func New(socket string) *Client {
	if socket == "" {
		socket = DefaultSocket
	}
	transport := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:       2,
		IdleConnTimeout:    30 * time.Second,
		DisableCompression: true,
	}
	return &Client{socket: socket, http: &http.Client{Transport: transport}}
}

// Socket is the path of the engine's socket.
func (c *Client) Socket() string { return c.socket }

// SocketFromEnv returns the socket DOCKER_HOST names when it is a unix://
// address, and DefaultSocket when DOCKER_HOST is unset. Another scheme
// (tcp://, ssh://) is an error: this client speaks only the unix socket.
func SocketFromEnv(getenv func(string) string) (string, error) {
	host := getenv("DOCKER_HOST")
	if host == "" {
		return DefaultSocket, nil
	}
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return "", fmt.Errorf("DOCKER_HOST %q: only a unix:// socket is supported (e.g. unix://%s)", host, DefaultSocket)
	}
	return path, nil
}

// get sends GET path?query to the engine and returns the response when its
// status is 2xx; otherwise an *Error.
func (c *Client) get(ctx context.Context, op, path string, query url.Values) (*http.Response, error) {
	u := "http://docker" + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("docker %s: %w", op, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	return nil, &Error{Op: op, Status: resp.StatusCode, Message: errbody.Message(resp.Body)}
}

// getJSON decodes the engine's answer to GET path?query into v.
func (c *Client) getJSON(ctx context.Context, op, path string, query url.Values, v any) error {
	resp, err := c.get(ctx, op, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("docker %s: decode the answer: %w", op, err)
	}
	return nil
}

func containerPath(container, what string) string {
	return "/containers/" + url.PathEscape(container) + "/" + what
}

// Container is what Inspect tells of a container.
type Container struct {
	ID           string
	Name         string // without the engine's leading "/"
	TTY          bool   // Config.Tty: its log is one raw stream, not stdout and stderr
	RestartCount int
	State        State
	Labels       map[string]string // Config.Labels: compose's among them
}

// State is a container's state as the engine reports it.
type State struct {
	// Status is one of created, running, paused, restarting, removing,
	// exited, dead.
	Status     string
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool // the kernel's OOM killer ended its last run
	Dead       bool
	Pid        int
	ExitCode   int
	StartedAt  time.Time
	FinishedAt time.Time
}

// Gone tells whether the container is being removed or is dead: the engine
// no longer gives its log.
func (s State) Gone() bool {
	return s.Status == "removing" || s.Status == "dead" || s.Dead
}

// Exited tells whether the container has stopped for good as far as the
// engine knows: exited or dead, and not about to be restarted by its
// restart policy.
func (s State) Exited() bool {
	return (s.Status == "exited" || s.Status == "dead") && !s.Restarting
}

// Inspect returns a container's state (GET /containers/{id}/json).
func (c *Client) Inspect(ctx context.Context, container string) (Container, error) {
	var raw struct {
		ID           string `json:"Id"`
		Name         string
		RestartCount int
		State        State
		Config       struct {
			Tty    bool
			Labels map[string]string
		}
	}
	if err := c.getJSON(ctx, "inspect", containerPath(container, "json"), nil, &raw); err != nil {
		return Container{}, err
	}
	return Container{
		ID:           raw.ID,
		Name:         strings.TrimPrefix(raw.Name, "/"),
		TTY:          raw.Config.Tty,
		RestartCount: raw.RestartCount,
		State:        raw.State,
		Labels:       raw.Config.Labels,
	}, nil
}
