package resources

import (
	"fmt"
	"log/slog"
	"syscall"
)

// smallShm is the size of /dev/shm at or below which a full one is warned
// about: Docker's and Kubernetes' default of 64 MiB, too small for
// PyTorch's DataLoader workers, which then die with "bus error".
const smallShm = 64 << 20

// Shm measures the size and use of a shared-memory mount (/dev/shm), and
// warns once when a small one is nearly full.
type Shm struct {
	path   string
	log    *slog.Logger
	warned bool
	statfs func(path string) (size, used uint64, err error)
}

// NewShm measures the file system at path.
func NewShm(path string, log *slog.Logger) (*Shm, error) {
	if _, _, err := statfs(path); err != nil {
		return nil, fmt.Errorf("no shm: %w", err)
	}
	return &Shm{path: path, log: log, statfs: statfs}, nil
}

// Name implements Source.
func (s *Shm) Name() string { return "shm" }

// Sample implements Source: shm_size_bytes and shm_used_bytes.
func (s *Shm) Sample(smp *Sample) error {
	size, used, err := s.statfs(s.path)
	if err != nil {
		return err
	}
	smp.Add("shm_size_bytes", float64(size))
	smp.Add("shm_used_bytes", float64(used))
	if !s.warned && size > 0 && size <= smallShm && used*10 > size*8 {
		s.warned = true
		s.log.Warn("shared memory is nearly full and small: PyTorch DataLoader workers fail with \"bus error\" when it is full; raise it (the shm plugin, or a memory-backed emptyDir at /dev/shm)",
			"path", s.path, "size_bytes", size, "used_bytes", used)
	}
	return nil
}

func statfs(path string) (size, used uint64, err error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, 0, fmt.Errorf("statfs %s: %w", path, err)
	}
	bs := uint64(st.Bsize)
	return st.Blocks * bs, (st.Blocks - st.Bfree) * bs, nil
}
