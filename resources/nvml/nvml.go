// Package nvml is the part of NVIDIA's management library (NVML) that the
// collector's GPU source reads: the devices (MIG devices included), their
// utilisation, memory, power, temperature and SM clock, and the GPU memory
// of each process.
//
// NVML is a C library, libnvidia-ml.so.1, which the NVIDIA container
// runtime mounts into a GPU job's container. The collector ships as a
// static binary, without cgo, so that it runs on any job image, and a
// static process cannot load a C library: that needs glibc's dynamic loader
// in the process. So the binding, package dlopen, runs in a small helper
// executable, collector-nvml, that the static collector carries embedded (a
// build with the nvml_helper tag, as `make build` makes it) and starts once
// it wants GPU figures; the two speak JSON lines over a pipe (Serve,
// OpenHelper). A build with cgo may use package dlopen in its own process
// instead.
package nvml

//go:generate env CGO_ENABLED=0 go build "-ldflags=-s -w" -o collector-nvml ./helper

// Library is NVML, opened.
type Library interface {
	// Devices lists the GPUs, each followed by its MIG devices when MIG is
	// on.
	Devices() ([]Device, error)
	// Shutdown releases the library.
	Shutdown()
}

// Device is one GPU, or one MIG device of a GPU.
type Device interface {
	Info() Info
	// Read reads the device's figures now. A figure the device does not
	// report (utilisation of a MIG device, power on some boards) is NaN.
	Read() (Reading, error)
	// Processes returns the GPU memory, in bytes, used by each process on
	// the device, by pid.
	Processes() (map[int]uint64, error)
}

// Info names a device.
type Info struct {
	// ID is the device's name in field names: "0" for GPU 0, "0_mig1" for
	// its MIG device 1.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	UUID string `json:"uuid,omitempty"`
	MIG  bool   `json:"mig,omitempty"`
}

// Reading is what a device reports at one moment; NaN where it does not.
type Reading struct {
	UtilPercent  float64
	MemoryUsed   float64 // bytes
	MemoryTotal  float64 // bytes
	PowerWatts   float64
	TemperatureC float64
	SMClockMHz   float64
}

// NotFound is the reason given when libnvidia-ml.so.1 is not there.
const NotFound = "no GPU: libnvidia-ml.so.1 not found (no NVIDIA driver, or it is not mounted into this container)"
