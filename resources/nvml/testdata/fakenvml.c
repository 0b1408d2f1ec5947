/* A fake libnvidia-ml.so.1 for the tests: the NVML calls the collector
 * binds, answering for two GPUs. GPU 0 is an "NVIDIA H100 80GB HBM3" with
 * MIG on and one MIG device, in slot 1; it runs 10 processes (pids 1000 to
 * 1009, 1 GiB each, more than the first call asks room for). GPU 1 is lost.
 * With FAKE_NVML_HANG set, reading the power hangs (a driver that does not
 * answer). Built by the tests with cc -shared. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct { int dev; int mig; } dev_t_;
typedef dev_t_ *nvmlDevice_t;
typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
typedef struct { unsigned int gpu, memory; } nvmlUtilization_t;
typedef struct {
	unsigned int pid;
	unsigned long long usedGpuMemory;
	unsigned int gpuInstanceId, computeInstanceId;
} nvmlProcessInfo_t;

static dev_t_ devs[] = {{0, -1}, {1, -1}, {0, 1}};
static int initialised;

enum { SUCCESS = 0, ERR_UNINIT = 1, ERR_INVALID = 2, ERR_NOT_SUPPORTED = 3, ERR_NOT_FOUND = 6,
       ERR_INSUFFICIENT = 7, ERR_LOST = 15 };

int nvmlInit_v2(void) { initialised = 1; return SUCCESS; }
int nvmlShutdown(void) { initialised = 0; return SUCCESS; }
const char *nvmlErrorString(int r) {
	switch (r) {
	case ERR_UNINIT: return "Uninitialized";
	case ERR_LOST: return "GPU is lost";
	default: return "Unknown Error";
	}
}
int nvmlDeviceGetCount_v2(unsigned int *n) {
	if (!initialised) return ERR_UNINIT;
	*n = 2;
	return SUCCESS;
}
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, nvmlDevice_t *d) {
	if (i > 1) return ERR_INVALID;
	*d = &devs[i];
	return SUCCESS;
}
int nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned int *cur, unsigned int *pending) {
	if (d->dev == 1) return ERR_NOT_SUPPORTED;
	*cur = *pending = 1;
	return SUCCESS;
}
int nvmlDeviceGetMaxMigDeviceCount(nvmlDevice_t d, unsigned int *n) { *n = 7; return SUCCESS; }
int nvmlDeviceGetMigDeviceHandleByIndex(nvmlDevice_t d, unsigned int i, nvmlDevice_t *m) {
	if (i != 1) return ERR_NOT_FOUND;
	*m = &devs[2];
	return SUCCESS;
}
int nvmlDeviceGetName(nvmlDevice_t d, char *buf, unsigned int n) {
	snprintf(buf, n, d->mig >= 0 ? "NVIDIA H100 80GB HBM3 MIG 1g.10gb" : d->dev == 0 ? "NVIDIA H100 80GB HBM3" : "Tesla T4");
	return SUCCESS;
}
int nvmlDeviceGetUUID(nvmlDevice_t d, char *buf, unsigned int n) {
	snprintf(buf, n, d->mig >= 0 ? "MIG-%d-%d" : "GPU-%d", d->dev, d->mig);
	return SUCCESS;
}
int nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
	if (d->dev == 1) return ERR_LOST;
	if (d->mig >= 0) { m->total = 10ULL << 30; m->used = 1ULL << 30; }
	else { m->total = 80ULL << 30; m->used = 10ULL << 30; }
	m->free = m->total - m->used;
	return SUCCESS;
}
int nvmlDeviceGetUtilizationRates(nvmlDevice_t d, nvmlUtilization_t *u) {
	if (d->mig >= 0) return ERR_NOT_SUPPORTED;
	u->gpu = 50; u->memory = 20;
	return SUCCESS;
}
int nvmlDeviceGetPowerUsage(nvmlDevice_t d, unsigned int *mw) {
	if (getenv("FAKE_NVML_HANG")) sleep(3600);
	if (d->mig >= 0) return ERR_NOT_SUPPORTED;
	*mw = 312500;
	return SUCCESS;
}
int nvmlDeviceGetTemperature(nvmlDevice_t d, int sensor, unsigned int *t) {
	if (d->mig >= 0 || sensor != 0) return ERR_NOT_SUPPORTED;
	*t = 61;
	return SUCCESS;
}
int nvmlDeviceGetClockInfo(nvmlDevice_t d, int type, unsigned int *mhz) {
	if (d->mig >= 0) return ERR_NOT_SUPPORTED;
	*mhz = type == 1 ? 1980 : 1;
	return SUCCESS;
}
int nvmlDeviceGetComputeRunningProcesses_v3(nvmlDevice_t d, unsigned int *n, nvmlProcessInfo_t *p) {
	unsigned int have = d->mig >= 0 ? 0 : 10;
	if (*n < have) { *n = have; return ERR_INSUFFICIENT; }
	for (unsigned int i = 0; i < have; i++) {
		p[i].pid = 1000 + i;
		p[i].usedGpuMemory = 1ULL << 30;
		p[i].gpuInstanceId = p[i].computeInstanceId = 0xFFFFFFFF;
	}
	*n = have;
	return SUCCESS;
}
