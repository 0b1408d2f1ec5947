package sync

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mlsidecar/collector/internal/pathglob"
)

// Seconds is a duration written as a number of seconds ("10", "0.5"), or as a
// Go duration ("1m30s"). It implements flag.Value.
type Seconds time.Duration

func (s *Seconds) String() string {
	return strconv.FormatFloat(time.Duration(*s).Seconds(), 'f', -1, 64)
}

// Set parses a number of seconds or a Go duration.
func (s *Seconds) Set(v string) error {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f > 1e9 || f < -1e9 {
			return fmt.Errorf("%q is out of range", v)
		}
		*s = Seconds(time.Duration(f * float64(time.Second)))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is not a number of seconds (like 10 or 0.5) nor a duration (like 1m30s)", v)
	}
	*s = Seconds(d)
	return nil
}

// ByteSize is a size in bytes, written as a number with an optional unit:
// B, KiB, MiB, GiB (or K, M, G, taken as binary units). It implements flag.Value.
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1},
}

// String writes the size in the largest unit that divides it (8MiB), else
// in bytes.
func (b ByteSize) String() string {
	v := int64(b)
	for _, u := range byteUnits[:3] {
		if v >= u.mult && v%u.mult == 0 {
			return strconv.FormatInt(v/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

// Set parses a size such as 8MiB, 64M or 1048576.
func (b *ByteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(strings.ToUpper(s), strings.ToUpper(u.suffix)) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return fmt.Errorf("%q is not a size; write a number of bytes with an optional unit, like 8MiB or 512KiB", v)
	}
	*b = ByteSize(n * mult)
	return nil
}

// Globs is a list of path globs in the pathglob language (a glob without a
// slash matches a name at any depth, one with a slash the path, a trailing
// slash folders only). As a flag the first value given replaces the defaults
// while later ones add to it.
type Globs = pathglob.List

// globsFlag is the flag.Value for a Globs setting: the first Set replaces the
// default list, later ones add to it.
type globsFlag struct {
	dst *Globs
	set bool
}

func (f *globsFlag) String() string { return f.dst.String() }

func (f *globsFlag) Set(v string) error {
	if !f.set {
		*f.dst, f.set = nil, true
	}
	return f.dst.Set(v)
}
