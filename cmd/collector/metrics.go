package main

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mlsidecar/collector/resources"
	"github.com/mlsidecar/collector/resume"
	"github.com/mlsidecar/collector/sync"
)

// The collector's own metrics, read from the components at each scrape of
// /metrics (--probe-addr), so that counting costs the components nothing
// between scrapes.
var (
	outputsUploadedFiles = prometheus.NewDesc("collector_outputs_uploaded_files_total", "Files of the outputs folder uploaded to the store.", nil, nil)
	outputsUploadedBytes = prometheus.NewDesc("collector_outputs_uploaded_bytes_total", "Bytes of the outputs folder uploaded to the store.", nil, nil)
	outputsDeleted       = prometheus.NewDesc("collector_outputs_deleted_objects_total", "Objects deleted from the store because their files were deleted in this attempt.", nil, nil)
	outputsFailures      = prometheus.NewDesc("collector_outputs_failures_total", "Uploads and deletions that failed after their retries (tried again at the next pass).", nil, nil)
	outputsRetries       = prometheus.NewDesc("collector_outputs_retries_total", "Store requests tried again after a transient failure.", nil, nil)
	outputsPending       = prometheus.NewDesc("collector_outputs_pending_files", "Files waiting for a later pass: not settled yet, changing while read, or failed.", nil, nil)
	outputsLastSync      = prometheus.NewDesc("collector_outputs_last_sync_timestamp_seconds", "When the last sync pass that left nothing failed ended (Unix time; 0 before the first).", nil, nil)
	outputsShared        = prometheus.NewDesc("collector_outputs_shared_paths_total", "Paths of the outputs folder that another replica of the run writes too (the lowest replica name keeps the path, the others' copies go to <path>.replica-<name>).", nil, nil)
	stateObjects         = prometheus.NewDesc("collector_state_checkpoint_objects_total", "Objects of the run's state (snapshots and journal records) put in the store.", nil, nil)
	stateBytes           = prometheus.NewDesc("collector_state_checkpoint_bytes_total", "Bytes of the run's state put in the store.", nil, nil)
	pluginsNoEffect      = prometheus.NewDesc("collector_plugins_no_effect_info", "A key of the plugins file the collector accepts and does not act on (syncStatuses, notifications, sidecar.image, ...).", []string{"key"}, nil)
)

// pluginsMetrics names the plugins keys without effect, one series each.
type pluginsMetrics []string

func (pluginsMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- pluginsNoEffect }

func (m pluginsMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, key := range m {
		ch <- prometheus.MustNewConstMetric(pluginsNoEffect, prometheus.GaugeValue, 1, key)
	}
}

// outputsMetrics reports the outputs sync's totals.
type outputsMetrics struct{ s *sync.Syncer }

func (m outputsMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{outputsUploadedFiles, outputsUploadedBytes, outputsDeleted, outputsFailures, outputsRetries, outputsPending, outputsLastSync, outputsShared} {
		ch <- d
	}
}

func (m outputsMetrics) Collect(ch chan<- prometheus.Metric) {
	t := m.s.Totals()
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	counter(outputsUploadedFiles, t.UploadedFiles)
	counter(outputsUploadedBytes, t.UploadedBytes)
	counter(outputsDeleted, t.Deleted)
	counter(outputsFailures, t.Failures)
	counter(outputsRetries, t.Retries)
	counter(outputsShared, m.s.Diverted())
	ch <- prometheus.MustNewConstMetric(outputsPending, prometheus.GaugeValue, float64(t.Pending))
	last := 0.0
	if !t.LastSync.IsZero() {
		last = float64(t.LastSync.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(outputsLastSync, prometheus.GaugeValue, last)
}

// stateMetrics reports what the run's checkpoints cost in the store.
type stateMetrics struct{ k *resume.Keeper }

func (m stateMetrics) Describe(ch chan<- *prometheus.Desc) { ch <- stateObjects; ch <- stateBytes }

func (m stateMetrics) Collect(ch chan<- prometheus.Metric) {
	objects, bytes := m.k.StoreWrites()
	ch <- prometheus.MustNewConstMetric(stateObjects, prometheus.CounterValue, float64(objects))
	ch <- prometheus.MustNewConstMetric(stateBytes, prometheus.CounterValue, float64(bytes))
}

// resourcesMetrics reports the latest resource sample as gauges, one per
// field with its unit in the name: collector_resources_cpu_cores,
// collector_resources_rss_bytes, collector_resources_gpu0_util_percent. The
// fields depend on the sources found at start, so the collector is
// unchecked (it describes nothing ahead).
type resourcesMetrics struct{ s *resources.Sampler }

func (resourcesMetrics) Describe(chan<- *prometheus.Desc) {}

func (m resourcesMetrics) Collect(ch chan<- prometheus.Metric) {
	smp, ok := m.s.Latest()
	if !ok {
		return
	}
	for _, f := range smp.Fields {
		d := prometheus.NewDesc("collector_resources_"+f.Name, "The latest resource sample's "+f.Name+".", nil, nil)
		if m, err := prometheus.NewConstMetric(d, prometheus.GaugeValue, f.Value); err == nil {
			ch <- m
		}
	}
}
