package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mlsidecar/collector/internal/child"
	"github.com/mlsidecar/collector/internal/docker"
	"github.com/mlsidecar/collector/logs"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/spool"
)

// logsOn tells whether logs are collected (the collectLogs plugin, on by
// default).
func (c *collector) logsOn() bool { return c.set.Plugins.CollectLogsOn() }

// commandOutputs makes the wrapped command's stdout and stderr: passed
// through to the collector's own, and captured for the logs component,
// which reads them behind the command (what it has not read yet waits in
// memory, then in a spill file in the run's state folder, at most
// --logs-spool-limit). With logs off the command writes to the collector's
// streams directly.
func (c *collector) commandOutputs() (capture *child.Capture, stdout, stderr *child.Output) {
	if !c.logsOn() {
		return nil, nil, nil
	}
	capture = child.NewCapture(child.CaptureConfig{
		SpillPath:  filepath.Join(localDir(c.set), "command-output.spill"),
		SpillLimit: int64(c.set.Logs.SpoolLimit),
		MaxLine:    int(c.set.Logs.LineLimit),
	})
	return capture, capture.Output("stdout", os.Stdout), capture.Output("stderr", os.Stderr)
}

// logSources builds the --logs sources. Every error is a bad setting.
func logSources(set *settings, getenv func(string) string) ([]logs.Source, error) {
	var out []logs.Source
	for _, spec := range set.Logs.Sources {
		kind, arg, err := logs.ParseSpec(spec)
		if err != nil {
			return nil, err
		}
		var src logs.Source
		switch kind {
		case "file":
			src, err = logs.NewFileSource(arg, set.Logs.Poll, int(set.Logs.LineLimit))
		case "k8s":
			src, err = logs.NewKubernetesSource(arg, getenv)
		case "docker":
			if !set.Plugins.DockerOn() {
				return nil, fmt.Errorf("--logs %s: needs the docker plugin (plugins: docker: true in --plugins)", spec)
			}
			socket, serr := docker.SocketFromEnv(getenv)
			if serr != nil {
				return nil, fmt.Errorf("--logs %s: %v", spec, serr)
			}
			src, err = logs.NewDockerSource(arg, socket)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, src)
	}
	return out, nil
}

// logsProducer builds the logs component over the spool: the wrapped
// command's streams (wrapper mode) and the --logs sources.
func (c *collector) logsProducer(sp *spool.Spool, st *resume.State, keeper *resume.Keeper) (component, error) {
	sources := append([]logs.Source(nil), c.logSources...)
	if c.stdout != nil {
		sources = append([]logs.Source{logs.NewCommandSource("command", c.capture)}, sources...)
	}
	getenv := c.getenv
	first := func(names ...string) string {
		for _, n := range names {
			if v := getenv(n); v != "" {
				return v
			}
		}
		return ""
	}
	col, err := logs.New(c.set.Logs, sp, sources, logs.Options{
		Node:       first("COLLECTOR_NODE_NAME", "NODE_NAME"),
		Pod:        first("COLLECTOR_POD_NAME", "POD_NAME"),
		Attempt:    st.Attempt,
		Section:    keeper.Section(logs.SectionName),
		Checkpoint: keeper.Flush,
		Logger:     c.log,
	})
	if err != nil {
		return nil, fmt.Errorf("logs: %w", err)
	}
	c.probe.Metrics.MustRegister(logsMetrics{col})
	return col, nil
}

var (
	logsLines   = prometheus.NewDesc("collector_logs_lines_total", "Log lines (records) written to chunks.", nil, nil)
	logsDropped = prometheus.NewDesc("collector_logs_dropped_lines_total", "Lines of the wrapped command dropped: the oldest unsent when the spool was full, or lines the collector could not take in time.", nil, nil)
	logsSpooled = prometheus.NewDesc("collector_logs_spool_bytes", "Bytes of log chunks in the local spool, not yet known to be in the store.", nil, nil)
)

// logsMetrics reports the logs component's totals.
type logsMetrics struct{ c *logs.Collector }

func (m logsMetrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- logsLines
	ch <- logsDropped
	ch <- logsSpooled
}

func (m logsMetrics) Collect(ch chan<- prometheus.Metric) {
	lines, dropped := m.c.Totals()
	ch <- prometheus.MustNewConstMetric(logsLines, prometheus.CounterValue, float64(lines))
	ch <- prometheus.MustNewConstMetric(logsDropped, prometheus.CounterValue, float64(dropped))
	ch <- prometheus.MustNewConstMetric(logsSpooled, prometheus.GaugeValue, float64(m.c.Spooled()))
}
