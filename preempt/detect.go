package preempt

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Cloud names a cloud whose notices can be watched.
type Cloud string

// The clouds, as --preemption-notice names them.
const (
	AWS   Cloud = "aws"
	GCP   Cloud = "gcp"
	Azure Cloud = "azure"
)

// The values of the setting besides a cloud.
const (
	Auto = "auto" // the cloud Detect finds, if any
	Off  = "off"
)

// Modes lists the valid values of the setting, in order.
var Modes = []string{Auto, string(AWS), string(GCP), string(Azure), Off}

// Environment variables that point a metadata client elsewhere: the AWS and
// Google SDKs' own, and one for Azure, whose SDK has none for the instance
// metadata service.
const (
	AWSEndpointEnv     = "AWS_EC2_METADATA_SERVICE_ENDPOINT"      // a URL: http://127.0.0.1:1338
	AWSEndpointModeEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE" // IPv6: http://[fd00:ec2::254]
	AWSDisabledEnv     = "AWS_EC2_METADATA_DISABLED"              // true: no IMDS, as the AWS SDKs take it
	GCEHostEnv         = "GCE_METADATA_HOST"                      // host[:port], no scheme
	AzureEndpointEnv   = "COLLECTOR_AZURE_METADATA_ENDPOINT"      // a URL: http://127.0.0.1:8080
)

// DMIDir is where Linux shows the machine's DMI (SMBIOS) strings.
const DMIDir = "/sys/class/dmi/id"

// azureAssetTag is the chassis asset tag of every Azure virtual machine.
const azureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// ParseMode checks a value of --preemption-notice.
func ParseMode(s string) (string, error) {
	for _, m := range Modes {
		if s == m {
			return s, nil
		}
	}
	return "", fmt.Errorf("%q is not a choice; valid: %s", s, strings.Join(Modes, ", "))
}

// Detect returns the cloud the machine is on, or "" off a cloud (or where
// the machine's identity is hidden, as in a gVisor sandbox: name the cloud
// then). An SDK override of a metadata endpoint names its cloud, as the
// Google SDK's OnGCE takes GCE_METADATA_HOST; else the DMI strings do:
// product_name "Google" or "Google Compute Engine" (OnGCE's check),
// sys_vendor or bios_vendor "Amazon EC2" (Nitro), a bios_version or
// hypervisor uuid of Amazon's Xen, and Azure's chassis asset tag. It reads a
// few small files and nothing else. AWS_EC2_METADATA_DISABLED=true, as the
// AWS SDKs take it, leaves EC2 out.
func Detect(dmiDir string, getenv func(string) string) Cloud {
	c := detect(dmiDir, getenv)
	if c == AWS && strings.EqualFold(getenv(AWSDisabledEnv), "true") {
		return "" // the AWS SDKs' switch for the metadata service
	}
	return c
}

func detect(dmiDir string, getenv func(string) string) Cloud {
	switch {
	case getenv(AWSEndpointEnv) != "":
		return AWS
	case getenv(GCEHostEnv) != "":
		return GCP
	case getenv(AzureEndpointEnv) != "":
		return Azure
	}
	read := func(name string) string {
		b, _ := os.ReadFile(filepath.Join(dmiDir, name))
		return strings.TrimSpace(string(b))
	}
	product := read("product_name")
	if product == "Google" || product == "Google Compute Engine" {
		return GCP
	}
	if read("sys_vendor") == "Amazon EC2" || read("bios_vendor") == "Amazon EC2" ||
		strings.Contains(strings.ToLower(read("bios_version")), "amazon") {
		return AWS
	}
	if read("chassis_asset_tag") == azureAssetTag {
		return Azure
	}
	if dmiDir == DMIDir {
		// Amazon's Xen machines (the older instance types) tell by their uuid.
		if b, err := os.ReadFile("/sys/hypervisor/uuid"); err == nil && strings.HasPrefix(strings.ToLower(string(b)), "ec2") {
			return AWS
		}
	}
	return ""
}
