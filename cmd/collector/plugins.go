package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gocloud.dev/gcerrors"

	"github.com/mlsidecar/collector/internal/plugins"
	"github.com/mlsidecar/collector/internal/tracking"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/stores"
)

// This file holds what the plugins keys change beyond the components: the
// wrapped command's environment and arguments, and the tracking API; and
// what the plugins file held that the collector does not act on.

// notePlugins says once, at start, which keys of the plugins file the
// collector accepts without acting on (also on /metrics), and warns of the
// keys it does not know and ignores.
func (c *collector) notePlugins() {
	p := c.set.Plugins
	if p == nil {
		return
	}
	var noEffect []string
	for _, n := range p.Notices {
		switch n.Kind {
		case plugins.NoEffect:
			if !slices.Contains(noEffect, n.Key) {
				noEffect = append(noEffect, n.Key)
			}
		case plugins.Unknown:
			c.log.Warn("plugins: unknown key, ignored", "key", n.Path, "line", n.Line, "file", c.set.PluginsFile)
		case plugins.Unread:
			c.log.Warn("plugins: the component this operation names is not read; only the file's own plugins apply", "key", n.Path, "line", n.Line, "file", c.set.PluginsFile)
		}
	}
	if len(noEffect) > 0 {
		c.log.Info("plugins accepted, no effect in the collector", "keys", strings.Join(noEffect, ", "))
		c.probe.Metrics.MustRegister(pluginsMetrics(noEffect))
	}
}

// runArtifactsPath is the run's root as the job can reach it: in the store
// for a mounted kind (host_path, volume_claim), else the folder that holds
// the outputs folder.
func (c *collector) runArtifactsPath(absOutputs string) string {
	if c.mounted() {
		if dir, err := filepath.Abs(c.conn.Schema.MountPath); err == nil {
			return filepath.Join(dir, c.set.Run)
		}
	}
	return filepath.Dir(absOutputs)
}

func (c *collector) mounted() bool {
	return c.conn.Kind == stores.KindHostPath || c.conn.Kind == stores.KindVolumeClaim
}

// childEnv is what the wrapped command gets in its environment beside the
// collector's own.
func (c *collector) childEnv(st *resume.State, absOutputs string) []string {
	env := []string{
		"COLLECTOR_RUN=" + c.set.Run,
		"COLLECTOR_ATTEMPT=" + strconv.Itoa(st.Attempt),
		"COLLECTOR_RESUMED=" + boolDigit(st.Attempt > 1),
		"COLLECTOR_OUTPUTS_PATH=" + absOutputs,
	}
	p := c.set.Plugins
	if p != nil && p.LogLevel != "" {
		// logLevel is the level of every container of the run.
		env = append(env, "LOG_LEVEL="+p.LogLevel, "POLYAXON_LOG_LEVEL="+p.LogLevel)
	}
	if p.MountArtifactsStoreOn() && c.mounted() {
		dir, _ := filepath.Abs(c.conn.Schema.MountPath)
		env = append(env, "COLLECTOR_ARTIFACTS_STORE_PATH="+dir, "COLLECTOR_RUN_ARTIFACTS_PATH="+c.runArtifactsPath(absOutputs))
	}
	if u := c.apiURL(); u != "" {
		env = append(env, "COLLECTOR_API_URL="+u)
		if tok := c.apiToken(); tok != "" && p.AuthOn() {
			env = append(env, "COLLECTOR_AUTH_TOKEN="+tok)
		}
	}
	return env
}

// expandArgs replaces the seed's context variables in the wrapped command's
// arguments: {{run_artifacts_path}}, {{run_outputs_path}}, {{run_uuid}}.
func (c *collector) expandArgs(args []string, absOutputs string) []string {
	r := strings.NewReplacer(
		"{{run_artifacts_path}}", c.runArtifactsPath(absOutputs),
		"{{run_outputs_path}}", absOutputs,
		"{{run_uuid}}", c.set.Run,
	)
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = r.Replace(a)
	}
	return out
}

// apiURL is the tracking API's URL the externalHost plugin picks, or "".
func (c *collector) apiURL() string {
	if c.set.Plugins.ExternalHostOn() && c.set.APIExternalURL != "" {
		return c.set.APIExternalURL
	}
	if c.set.APIURL != "" {
		return c.set.APIURL
	}
	return c.set.APIExternalURL
}

// apiToken is the tracking API's token: --api-token-file, else
// COLLECTOR_API_TOKEN.
func (c *collector) apiToken() string {
	if c.set.APITokenFile != "" {
		if data, err := os.ReadFile(c.set.APITokenFile); err == nil {
			return strings.TrimSpace(string(data))
		}
	}
	if c.getenv != nil {
		return c.getenv("COLLECTOR_API_TOKEN")
	}
	return ""
}

// checkAPIToken fails at start when --api-token-file cannot be read.
func checkAPIToken(set *settings) error {
	if set.APITokenFile == "" {
		return nil
	}
	if _, err := os.ReadFile(set.APITokenFile); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("--api-token-file: cannot read %q: %v", set.APITokenFile, err)
	}
	return nil
}

// runReport reports the run to the tracking API, when one is set: started
// now, heartbeats until end is called, then the end.
type runReport struct {
	c    *collector
	rep  *tracking.Reporter
	base tracking.Status
	stop context.CancelFunc
}

// reportRun starts reporting, or returns nil without a tracking API.
func (c *collector) reportRun(st *resume.State, mode string) *runReport {
	u := c.apiURL()
	if u == "" {
		return nil
	}
	token := ""
	if c.set.Plugins.AuthOn() {
		token = c.apiToken()
	}
	r := &runReport{c: c, rep: tracking.New(u, token, c.log), base: tracking.Status{Run: c.set.Run, Attempt: st.Attempt, Mode: mode}}
	ctx, stop := context.WithCancel(context.Background())
	r.stop = stop
	go func() {
		started := r.base
		started.Status = tracking.Started
		_ = r.rep.Report(ctx, started)
		r.rep.Heartbeat(ctx, r.base, c.set.APIHeartbeat)
	}()
	return r
}

// end reports how the run ended, with the resources summary when the store
// has one; it waits at most the tracking timeout.
func (r *runReport) end(code *int, failure error) {
	if r == nil {
		return
	}
	r.stop()
	st := r.base
	st.Status, st.ExitCode = tracking.Succeeded, code
	if failure != nil || (code != nil && *code != 0) {
		st.Status = tracking.Failed
	}
	if failure != nil {
		st.Message = stores.RedactString(failure.Error())
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracking.Timeout)
	defer cancel()
	if data, err := r.c.home.ReadAll(ctx, resourcesSummaryKey); err == nil && json.Valid(data) {
		st.Resources = data
	} else if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		r.c.log.Debug("no resources summary for the tracking API", "err", stores.Redact(err))
	}
	_ = r.rep.Report(ctx, st)
}

// resourcesSummaryKey is the run's resources summary, under the run's root.
const resourcesSummaryKey = "resources/summary.json"

// boolDigit is b as the environment gives a flag to the command: 1 or 0.
func boolDigit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
