package resume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockName is the file in a run's state folder that a collector holds
// locked while it uses the folder.
const LockName = "lock"

// LockedError says another collector holds the run's state folder: two
// writing one journal and one spool would corrupt both.
type LockedError struct {
	Dir string
	PID int // the holder's, as it wrote it; 0 when unknown
}

func (e *LockedError) Error() string {
	who := "another collector"
	if e.PID > 0 {
		who = fmt.Sprintf("another collector (pid %d)", e.PID)
	}
	return fmt.Sprintf("%s is using the state folder %s for this run; two would corrupt its state: stop it, or give this one its own --state-dir or --run", who, e.Dir)
}

// Lock takes the run's state folder dir for this process, creating it, until
// the returned function is called or the process ends (a killed collector
// leaves no lock behind: the kernel drops it). A folder another process
// holds is a *LockedError. On a file system without locks (some network
// ones), the folder is used unlocked and ok is false.
func Lock(dir string) (unlock func(), ok bool, err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, false, fmt.Errorf("state folder: %w", err)
	}
	path := filepath.Join(dir, LockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("state folder lock: %w", err)
	}
	switch err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); {
	case err == nil:
	case errors.Is(err, syscall.EWOULDBLOCK):
		data, _ := os.ReadFile(path)
		pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		f.Close()
		return nil, false, &LockedError{Dir: dir, PID: pid}
	default: // ENOLCK, EOPNOTSUPP: no locks here
		f.Close()
		return func() {}, false, nil
	}
	_ = f.Truncate(0)
	_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, true, nil
}
