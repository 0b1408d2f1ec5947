package resources

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// openJob builds the sources of the job's processes and cgroup, and says
// in one line what they measure:
//
//   - the processes and cgroup named (Config.PIDs, Config.CgroupPath), in
//     either mode;
//   - in wrapper mode, the collector's descendants and its own cgroup;
//   - in a sidecar in a container's process namespace (a pod with
//     shareProcessNamespace, a compose service sharing the job's), every
//     process it sees but its own, and no cgroup (its own is not the
//     job's);
//   - in a sidecar that sees the host's processes, none: they are not the
//     job's.
func (s *Sampler) openJob() (found []string, job string) {
	var scope Scope
	var cgroup *CgroupPaths
	named := s.cfg.CgroupPath != "" || len(s.cfg.PIDs) > 0
	var what []string
	if s.cfg.CgroupPath != "" {
		p, err := JobCgroup(s.cfg.CgroupRoot, s.cfg.CgroupPath)
		if err != nil {
			return nil, "no process: cgroup " + err.Error()
		}
		cgroup, scope.Cgroup = &p, p.Memory
		what = append(what, "the processes of cgroup "+s.cfg.CgroupPath)
	}
	if len(s.cfg.PIDs) > 0 {
		scope.PIDs = s.cfg.PIDs
		pids := make([]string, len(s.cfg.PIDs))
		for i, p := range s.cfg.PIDs {
			pids[i] = strconv.Itoa(p)
		}
		what = append(what, "processes "+strings.Join(pids, ", ")+" and their descendants")
	}
	switch {
	case named:
		job = strings.Join(what, " and ")
	case s.cfg.Wrapper:
		scope.Parent = os.Getpid()
		job = "the wrapped command and its descendants"
		cgroup = s.cfg.Cgroup
		if cgroup == nil {
			if p, err := FindCgroup(s.cfg.CgroupRoot, s.cfg.ProcDir+"/self/cgroup"); err != nil {
				s.log.Info(err.Error())
			} else {
				cgroup = &p
			}
		}
	case hostPIDNamespace(s.cfg.ProcDir):
		return nil, "no process: the collector sees the host's processes, not a container's, and they are not the job's; " +
			"name the job with --resources-pid or --resources-cgroup"
	default:
		cgroup = s.cfg.Cgroup
		job = "every process of this container's process namespace but the collector (a pod's with shareProcessNamespace)"
	}
	// A rate is taken over half an interval at least (see rate); the
	// processes of a cgroup are bounded by its CPU quota.
	window, quota := s.cfg.Interval/2, 0.0
	if cgroup != nil && (scope.Parent > 0 || scope.Cgroup != "") {
		if r, err := ReadCgroup(*cgroup); err == nil {
			quota = r.CPULimit
		}
	}
	if t, err := NewProcessTree(s.cfg.ProcDir, scope); err != nil {
		job = "no process: " + err.Error()
	} else {
		t.rateWindow(window, quota)
		for _, pid := range scope.PIDs {
			if t.given[pid] == 0 {
				s.log.Info("a process named by --resources-pid is not running; it is measured if it starts", "pid", pid)
			}
		}
		s.tree = t
		s.sources = append(s.sources, t)
		found = append(found, "process tree")
		if scope.all() && len(t.members) == 0 {
			job = "no process: none but the collector is visible; a sidecar sees the job's processes only with shareProcessNamespace: true"
		}
	}
	if cgroup != nil {
		if c, err := NewCgroup(*cgroup); err != nil {
			s.log.Info(err.Error())
		} else {
			c.rateWindow(window, onlineCPUs(s.cfg.ProcDir))
			s.sources = append(s.sources, c)
			found = append(found, fmt.Sprintf("cgroup v%d (%s)", cgroup.Version, cgroup.Memory))
		}
	} else if !named && !s.cfg.Wrapper {
		s.log.Info("no cgroup: a sidecar's cgroup is its own container's, not the job's; name the job's with --resources-cgroup")
	}
	return found, job
}

// hostPIDNamespace tells whether the collector sees the host's processes:
// kthreadd, the kernel's thread of pid 2, is visible only in the host's
// process namespace (or one a container shares with the host: hostPID).
func hostPIDNamespace(procDir string) bool {
	b, err := os.ReadFile(procDir + "/2/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || !bytes.HasSuffix(b[:i], []byte("(kthreadd")) {
		return false
	}
	// Field 9, flags: PF_KTHREAD.
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 7 {
		return false
	}
	flags, err := strconv.ParseUint(f[6], 10, 64)
	return err == nil && flags&0x00200000 != 0
}
