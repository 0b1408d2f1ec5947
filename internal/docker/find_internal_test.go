package docker

import "testing"

// TestContainerIDFromMountinfo: the container's ID is read from the mount
// of its own resolv.conf, hostname or hosts, as the engine makes them on
// cgroup v1 and v2 alike; a host's mount table has none.
func TestContainerIDFromMountinfo(t *testing.T) {
	const id = "3f4e8b2c1d0a9f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706"
	for _, tc := range []struct {
		name, mountinfo, want string
	}{
		{"in a container", "1029 1011 0:55 / / rw,relatime master:1 - overlay overlay rw\n" +
			"1047 1029 259:1 /var/lib/docker/containers/" + id + "/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/root rw\n" +
			"1048 1029 259:1 /var/lib/docker/containers/" + id + "/hostname /etc/hostname rw,relatime - ext4 /dev/root rw\n", id},
		{"volume of another container's folder", "1050 1029 259:1 /var/lib/docker/containers/" + id + "/mounts /data rw - ext4 /dev/root rw\n", ""},
		{"on the host", "22 1 259:1 / / rw,relatime shared:1 - ext4 /dev/root rw\n", ""},
	} {
		got := ""
		if m := containerID.FindStringSubmatch(tc.mountinfo); m != nil {
			got = m[1]
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
