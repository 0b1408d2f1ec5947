package stores_test

import (
	"errors"
	"testing"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/storetest"
)

// TestPartSizeAtStoreLimits checks the part size each store kind gives a
// file at the sizes where its limits matter: the parts fit the store's part
// count and part size, the largest object the store takes gets parts, and a
// larger one is refused. The limits are the backends' own, from stores
// opened on the test servers; no file is created.
func TestPartSizeAtStoreLimits(t *testing.T) {
	const (
		mib      = int64(1) << 20
		gib      = int64(1) << 30
		tib      = int64(1) << 40
		partSize = 8 * mib // --part-size's default
	)
	type want struct {
		size     int64
		partSize int64 // 0: refused as too large
	}
	tests := []struct {
		fixture func(testing.TB) storetest.Fixture
		cases   []want
	}{
		{storetest.S3, []want{
			{1 * gib, partSize},
			{78 * gib, partSize}, // 9,984 parts of 8 MiB
			{79 * gib, 9 * mib},  // 10,112 parts of 8 MiB would be too many
			{1 * tib, 105 * mib},
			{5 * tib, 525 * mib}, // S3's largest object
			{5*tib + 1, 0},
		}},
		{storetest.Azure, []want{
			{195 * gib, partSize},
			{390 * gib, partSize}, // 49,920 blocks of 8 MiB
			{391 * gib, 9 * mib},
			{1 * tib, 21 * mib},
			{50000 * 4000 * mib, 4000 * mib}, // a block blob's largest: 50,000 blocks of 4,000 MiB
			{50000*4000*mib + 1, 0},
		}},
		{storetest.GCS, []want{
			{1 * tib, partSize},
			{5 * tib, partSize}, // chunks of any number
			{5*tib + 1, 0},
		}},
		{storetest.HostPath, []want{
			{100 * tib, partSize},
		}},
	}
	for _, tt := range tests {
		f := tt.fixture(t)
		t.Run(f.Kind, func(t *testing.T) {
			s := f.OpenStore(t)
			l := s.Limits()
			for _, c := range tt.cases {
				err := l.CheckSize(c.size)
				if c.partSize == 0 {
					if !errors.Is(err, stores.ErrTooLarge) {
						t.Errorf("CheckSize(%d) = %v, want ErrTooLarge", c.size, err)
					}
					continue
				}
				if err != nil {
					t.Errorf("CheckSize(%d) = %v, want nil", c.size, err)
				}
				got := l.PartSize(c.size, partSize)
				if got != c.partSize {
					t.Errorf("PartSize(%d) = %d MiB, want %d MiB", c.size, got/mib, c.partSize/mib)
				}
				parts := (c.size + got - 1) / got
				if l.MaxParts > 0 && parts > l.MaxParts || l.MaxPartSize > 0 && got > l.MaxPartSize || got%mib != 0 {
					t.Errorf("size %d: %d parts of %d bytes; the store takes %d parts of at most %d", c.size, parts, got, l.MaxParts, l.MaxPartSize)
				}
				if !l.Fits(c.size, got) {
					t.Errorf("Fits(%d, %d) = false for the part size PartSize chose", c.size, got)
				}
			}
		})
	}
}

// TestLimitsFits checks which saved part sizes an upload in flight may be
// continued with.
func TestLimitsFits(t *testing.T) {
	s3 := stores.Limits{MaxParts: 10000, MinPartSize: 5 << 20, MaxPartSize: 5 << 30, MaxObjectSize: 5 << 40}
	gcs := stores.Limits{MaxObjectSize: 5 << 40, PartMultiple: 256 << 10}
	tests := []struct {
		name           string
		l              stores.Limits
		size, partSize int64
		want           bool
	}{
		{"the part size it would get", s3, 100 << 30, 11 << 20, true},
		{"larger parts than it would get", s3, 100 << 30, 16 << 20, true},
		{"too many parts", s3, 100 << 30, 8 << 20, false},
		{"part below the smallest", s3, 100 << 20, 1 << 20, false},
		{"a small part that is the only one", s3, 1 << 20, 2 << 20, true},
		{"part above the largest", s3, 100 << 30, 6 << 30, false},
		{"no part size", s3, 100 << 20, 0, false},
		{"object too large", s3, 6 << 40, 1 << 30, false},
		{"any size where no multiple is needed", s3, 100 << 20, 5<<20 + 1<<10, true},
		{"a multiple of GCS's chunk", gcs, 100 << 20, 5<<20 + 256<<10, true},
		{"not a multiple of GCS's chunk", gcs, 100 << 20, 5<<20 + 1<<10, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.Fits(tt.size, tt.partSize); got != tt.want {
				t.Errorf("Fits(%d, %d) = %v, want %v", tt.size, tt.partSize, got, tt.want)
			}
		})
	}
}
