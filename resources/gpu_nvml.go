//go:build cgo && linux

package resources

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// OpenNVML loads libnvidia-ml (at run time: a machine without the driver
// gets an error, not a failed start) and initialises it.
func OpenNVML() (NVML, error) {
	if ret := nvml.Init(); ret != nvml.SUCCESS {
		if ret == nvml.ERROR_LIBRARY_NOT_FOUND {
			return nil, errors.New("no GPU: libnvidia-ml.so.1 not found (no NVIDIA driver, or it is not mounted into this container)")
		}
		return nil, fmt.Errorf("no GPU: NVML did not initialise: %v", ret)
	}
	return realNVML{}, nil
}

type realNVML struct{}

func (realNVML) Shutdown() { nvml.Shutdown() }

func (realNVML) Devices() ([]GPUDevice, error) {
	n, ret := nvml.DeviceGetCount()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("count devices: %v", ret)
	}
	var devs []GPUDevice
	for i := range n {
		h, ret := nvml.DeviceGetHandleByIndex(i)
		if ret != nvml.SUCCESS {
			return nil, fmt.Errorf("device %d: %v", i, ret)
		}
		id := strconv.Itoa(i)
		devs = append(devs, newNVMLDevice(h, id, false))
		if cur, _, ret := h.GetMigMode(); ret != nvml.SUCCESS || cur != nvml.DEVICE_MIG_ENABLE {
			continue
		}
		count, ret := h.GetMaxMigDeviceCount()
		if ret != nvml.SUCCESS {
			continue
		}
		for m := range count {
			mh, ret := h.GetMigDeviceHandleByIndex(m)
			if ret != nvml.SUCCESS {
				continue // no MIG device in that slot
			}
			devs = append(devs, newNVMLDevice(mh, id+"_mig"+strconv.Itoa(m), true))
		}
	}
	return devs, nil
}

type nvmlDevice struct {
	h    nvml.Device
	info GPUInfo
}

func newNVMLDevice(h nvml.Device, id string, mig bool) *nvmlDevice {
	name, _ := h.GetName()
	uuid, _ := h.GetUUID()
	return &nvmlDevice{h: h, info: GPUInfo{ID: id, Name: name, UUID: uuid, MIG: mig}}
}

func (d *nvmlDevice) Info() GPUInfo { return d.info }

func (d *nvmlDevice) Read() (GPUReading, error) {
	nan := math.NaN()
	r := GPUReading{nan, nan, nan, nan, nan, nan}
	mem, ret := d.h.GetMemoryInfo()
	if ret == nvml.ERROR_GPU_IS_LOST {
		return r, errors.New("the GPU is lost")
	}
	if ret == nvml.SUCCESS {
		r.MemoryUsed, r.MemoryTotal = float64(mem.Used), float64(mem.Total)
	}
	if u, ret := d.h.GetUtilizationRates(); ret == nvml.SUCCESS {
		r.UtilPercent = float64(u.Gpu)
	}
	if mw, ret := d.h.GetPowerUsage(); ret == nvml.SUCCESS {
		r.PowerWatts = float64(mw) / 1000
	}
	if t, ret := d.h.GetTemperature(nvml.TEMPERATURE_GPU); ret == nvml.SUCCESS {
		r.TemperatureC = float64(t)
	}
	if c, ret := d.h.GetClockInfo(nvml.CLOCK_SM); ret == nvml.SUCCESS {
		r.SMClockMHz = float64(c)
	}
	return r, nil
}

func (d *nvmlDevice) Processes() (map[int]uint64, error) {
	procs, ret := d.h.GetComputeRunningProcesses()
	if ret != nvml.SUCCESS {
		return nil, fmt.Errorf("processes: %v", ret)
	}
	m := make(map[int]uint64, len(procs))
	for _, p := range procs {
		m[int(p.Pid)] += p.UsedGpuMemory
	}
	return m, nil
}
