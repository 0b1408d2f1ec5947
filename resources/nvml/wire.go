package nvml

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
)

// The helper's protocol: one JSON object a line each way. The helper first
// writes whether NVML opened ({} or {"err": "no GPU: ..."}, and then it
// exits); after that it answers each request with one response, until its
// input ends, when it shuts NVML down and exits.

// request is one call: "devices", or "read" or "processes" of the device at
// index Dev of the last "devices" answer.
type request struct {
	Op  string `json:"op"`
	Dev int    `json:"dev,omitempty"`
}

type response struct {
	Err       string         `json:"err,omitempty"`
	Devices   []Info         `json:"devices,omitempty"`
	Reading   *wireReading   `json:"reading,omitempty"`
	Processes map[int]uint64 `json:"processes,omitempty"`
}

// wireReading is a Reading in JSON, which has no NaN: a figure the device
// does not report is left out.
type wireReading struct {
	UtilPercent  *float64 `json:"util_percent,omitempty"`
	MemoryUsed   *float64 `json:"memory_used,omitempty"`
	MemoryTotal  *float64 `json:"memory_total,omitempty"`
	PowerWatts   *float64 `json:"power_watts,omitempty"`
	TemperatureC *float64 `json:"temperature_celsius,omitempty"`
	SMClockMHz   *float64 `json:"sm_clock_mhz,omitempty"`
}

func toWire(r Reading) *wireReading {
	opt := func(v float64) *float64 {
		if math.IsNaN(v) {
			return nil
		}
		return &v
	}
	return &wireReading{opt(r.UtilPercent), opt(r.MemoryUsed), opt(r.MemoryTotal), opt(r.PowerWatts), opt(r.TemperatureC), opt(r.SMClockMHz)}
}

func (w *wireReading) reading() Reading {
	val := func(p *float64) float64 {
		if p == nil {
			return math.NaN()
		}
		return *p
	}
	return Reading{val(w.UtilPercent), val(w.MemoryUsed), val(w.MemoryTotal), val(w.PowerWatts), val(w.TemperatureC), val(w.SMClockMHz)}
}

// Serve is the helper's side: it writes whether NVML opened (openErr, from
// opening lib) and then answers requests from in until in ends. It returns
// nil at the end of in, else why it stopped.
func Serve(in io.Reader, out io.Writer, lib Library, openErr error) error {
	enc := json.NewEncoder(out)
	if openErr != nil {
		return enc.Encode(response{Err: openErr.Error()})
	}
	defer lib.Shutdown()
	if err := enc.Encode(response{}); err != nil {
		return err
	}
	dec := json.NewDecoder(bufio.NewReader(in))
	var devices []Device
	for {
		var req request
		if err := dec.Decode(&req); err == io.EOF {
			return nil
		} else if err != nil {
			return fmt.Errorf("read request: %w", err)
		}
		var resp response
		var err error
		switch {
		case req.Op == "devices":
			if devices, err = lib.Devices(); err == nil {
				resp.Devices = []Info{}
				for _, d := range devices {
					resp.Devices = append(resp.Devices, d.Info())
				}
			}
		case req.Dev < 0 || req.Dev >= len(devices):
			err = fmt.Errorf("no device %d", req.Dev)
		case req.Op == "read":
			var r Reading
			if r, err = devices[req.Dev].Read(); err == nil {
				resp.Reading = toWire(r)
			}
		case req.Op == "processes":
			if resp.Processes, err = devices[req.Dev].Processes(); err == nil && resp.Processes == nil {
				resp.Processes = map[int]uint64{}
			}
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			resp = response{Err: err.Error()}
		}
		if err := enc.Encode(resp); err != nil {
			return err
		}
	}
}
