package docker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
)

// ErrAmbiguous is what Find returns for a compose service with several
// containers (errors.Is).
var ErrAmbiguous = errors.New("a compose service with several containers")

// The labels docker compose puts on the containers it makes.
const (
	LabelProject = "com.docker.compose.project"
	LabelService = "com.docker.compose.service"
	LabelOneOff  = "com.docker.compose.oneoff"
)

// Find returns the container that name names: a compose service's
// container, or a container's name or ID as the engine knows it, so that a
// compose file can name the job by its service ("job") rather than by a
// container_name, which would be global to the host. Where this process
// runs in a compose project's container (Self), a service of that project
// comes first (a stray container of that name elsewhere on the host does
// not count); outside one, a container's name or ID, then the one project
// that has such a service. A service with several containers (scaled) is
// ErrAmbiguous, naming them; `docker compose run` containers do not count.
// No container and no service is ErrNotFound.
func (c *Client) Find(ctx context.Context, name string) (Container, error) {
	project := c.project(ctx)
	var inProject error
	if project != "" {
		info, err := c.service(ctx, name, project)
		if !isNotFound(err) {
			return info, err
		}
		inProject = err
	}
	info, err := c.Inspect(ctx, name)
	switch {
	case err == nil || !isNotFound(err):
		return info, err
	case inProject != nil:
		return Container{}, inProject
	}
	return c.service(ctx, name, "")
}

// service finds the container of a compose service, in project or (when
// "") in any.
func (c *Client) service(ctx context.Context, name, project string) (Container, error) {
	filters := []string{LabelService + "=" + name}
	if project != "" {
		filters = append(filters, LabelProject+"="+project)
	}
	list, err := c.list(ctx, filters)
	if err != nil {
		return Container{}, err
	}
	list = slices.DeleteFunc(list, func(e listEntry) bool { return e.Labels[LabelOneOff] == "True" })
	switch len(list) {
	case 0:
		return Container{}, &Error{Op: "inspect", Status: http.StatusNotFound, Message: "No such container or compose service: " + name}
	case 1:
		return c.Inspect(ctx, list[0].ID)
	}
	var names []string
	for _, e := range list {
		names = append(names, strings.TrimPrefix(e.Names[0], "/")+" (project "+e.Labels[LabelProject]+")")
	}
	slices.Sort(names)
	return Container{}, fmt.Errorf("%w: %q has %d: %s; name one of them", ErrAmbiguous, name, len(list), strings.Join(names, ", "))
}

// project is the compose project of the container this process runs in
// ("" when it runs in none, or the engine does not know it).
func (c *Client) project(ctx context.Context) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.projectKnown {
		return c.projectName
	}
	self := c.self()
	if self == "" {
		c.projectKnown = true
		return ""
	}
	me, err := c.Inspect(ctx, self)
	if err != nil {
		return "" // asked again next time, unless the engine does not know it
	}
	c.projectName, c.projectKnown = me.Labels[LabelProject], true
	return c.projectName
}

func isNotFound(err error) bool {
	e, ok := err.(*Error)
	return ok && e.Status == 404
}

// listEntry is one container of GET /containers/json.
type listEntry struct {
	ID     string `json:"Id"`
	Names  []string
	Labels map[string]string
}

// list returns the containers, running or not, that carry every label
// of filters ("key=value").
func (c *Client) list(ctx context.Context, filters []string) ([]listEntry, error) {
	f, _ := json.Marshal(map[string][]string{"label": filters})
	var list []listEntry
	if err := c.getJSON(ctx, "list", "/containers/json", url.Values{"all": {"1"}, "filters": {string(f)}}, &list); err != nil {
		return nil, err
	}
	for i := range list {
		if len(list[i].Names) == 0 {
			list[i].Names = []string{list[i].ID}
		}
	}
	return list, nil
}

// containerID finds a container's ID in a mount table: the engine mounts
// the container's own resolv.conf, hostname and hosts from
// /var/lib/docker/containers/<id>/, on cgroup v1 and v2 alike.
var containerID = regexp.MustCompile(`/containers/([0-9a-f]{64})/(?:resolv\.conf|hostname|hosts) `)

// self is the container this process runs in: Self when set, else the ID
// in /proc/self/mountinfo, else the hostname (the engine makes it the
// container's short ID unless told otherwise); "" outside a container.
func (c *Client) self() string {
	if c.Self != "" {
		return c.Self
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		if m := containerID.FindSubmatch(b); m != nil {
			return string(m[1])
		}
	}
	if _, err := os.Stat("/.dockerenv"); err == nil {
		h, _ := os.Hostname()
		return h
	}
	return ""
}
