package resources

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFindCgroup finds the collector's cgroup from /proc/self/cgroup: v2 in
// a nested path or at the root of a cgroup namespace, v1 with the cpu and
// cpuacct controllers mounted together or apart.
func TestFindCgroup(t *testing.T) {
	tests := []struct {
		name   string
		files  []string // files under the root
		self   string   // /proc/self/cgroup
		want   CgroupPaths
		errMsg string
	}{
		{
			name:  "v2 nested",
			files: []string{"cgroup.controllers", "kubepods/pod1/c1/memory.current"},
			self:  "0::/kubepods/pod1/c1\n",
			want:  CgroupPaths{Version: 2, Memory: "kubepods/pod1/c1"},
		},
		{
			name:  "v2 namespace",
			files: []string{"cgroup.controllers", "memory.current"},
			self:  "0::/\n",
			want:  CgroupPaths{Version: 2, Memory: ""},
		},
		{
			name:  "v1 as on this machine",
			files: []string{"memory/process_api/abc/memory.usage_in_bytes", "cpu/cpu.stat", "cpuacct/cpuacct.usage"},
			self:  "9:name=systemd:/\n4:memory:/process_api/abc\n2:cpuacct:/\n1:cpu:/\n0::/\n",
			want:  CgroupPaths{Version: 1, Memory: "memory/process_api/abc", CPU: "cpu", CPUAcct: "cpuacct"},
		},
		{
			name:  "v1 cpu,cpuacct, path not under the mount",
			files: []string{"memory/memory.usage_in_bytes", "cpu,cpuacct/cpu.stat"},
			self:  "5:memory:/docker/123\n3:cpu,cpuacct:/docker/123\n",
			want:  CgroupPaths{Version: 1, Memory: "memory", CPU: "cpu,cpuacct", CPUAcct: "cpu,cpuacct"},
		},
		{
			name:   "v2 without the memory controller",
			files:  []string{"cgroup.controllers", "x/cgroup.procs"},
			self:   "0::/x\n",
			errMsg: "no cgroup: the memory controller is not enabled in ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, f := range tt.files {
				p := filepath.Join(root, f)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte("0\n"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			self := filepath.Join(t.TempDir(), "cgroup")
			os.WriteFile(self, []byte(tt.self), 0o644)
			got, err := FindCgroup(root, self)
			if tt.errMsg != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.errMsg) {
					t.Fatalf("err = %v, want %q...", err, tt.errMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			for _, p := range []*string{&want.Memory, &want.CPU, &want.CPUAcct} {
				if *p != "" || p == &want.Memory {
					*p = filepath.Join(root, *p)
				}
			}
			if got != want {
				t.Errorf("got %+v\nwant %+v", got, want)
			}
		})
	}
}
