package report

import "math"

// maxBuckets bounds a series' memory while it is read: past it, neighbouring
// buckets merge and the buckets' width doubles. It is well above a plot's
// pixel columns, so that each column still gets its own extremes.
const maxBuckets = 4096

// baseWidth is the first buckets' width, in nanoseconds.
const baseWidth = int64(1e6)

// Point is one point of a plotted line: a time (Unix nanoseconds) and a
// value.
type Point struct {
	T int64
	V float64
}

// bucket is a series' extremes over one span of time.
type bucket struct {
	n        int
	min, max Point
}

func (b *bucket) add(p Point) {
	if b.n == 0 || p.V < b.min.V {
		b.min = p
	}
	if b.n == 0 || p.V > b.max.V {
		b.max = p
	}
	b.n++
}

func (b *bucket) merge(o *bucket) {
	if o.n == 0 {
		return
	}
	if b.n == 0 {
		*b = *o
		return
	}
	if o.min.V < b.min.V {
		b.min = o.min
	}
	if o.max.V > b.max.V {
		b.max = o.max
	}
	b.n += o.n
}

// series keeps the extremes of a series of any length in at most
// maxBuckets buckets of equal width, which doubles as the series grows.
type series struct {
	origin, width int64
	buckets       []bucket
	n             int
	first, last   int64 // the times of the first and last points
	peak          float64
}

func (s *series) add(t int64, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	if s.n == 0 {
		s.origin, s.width, s.first, s.last, s.peak = t, baseWidth, t, t, v
	}
	s.n++
	s.first, s.last, s.peak = min(s.first, t), max(s.last, t), max(s.peak, v)
	i := max(0, (t-s.origin)/s.width) // a point before the first goes to its bucket
	for i >= maxBuckets {
		s.halve()
		i = (t - s.origin) / s.width
	}
	for int64(len(s.buckets)) <= i {
		s.buckets = append(s.buckets, bucket{})
	}
	s.buckets[i].add(Point{t, v})
}

// halve merges the buckets pairwise: half as many, twice as wide.
func (s *series) halve() {
	n := (len(s.buckets) + 1) / 2
	for i := range n {
		b := s.buckets[2*i]
		if 2*i+1 < len(s.buckets) {
			b.merge(&s.buckets[2*i+1])
		}
		s.buckets[i] = b
	}
	s.buckets = s.buckets[:n]
	s.width *= 2
}

// columns reduces the series to cols columns of equal width over [t0, t1]:
// each column's lowest and highest points, in time order, so that a line
// drawn through them shows every peak and trough a pixel can.
func (s *series) columns(t0, t1 int64, cols int) []Point {
	if s.n == 0 || cols <= 0 {
		return nil
	}
	span := max(t1-t0, 1)
	col := make([]bucket, cols)
	place := func(p Point) {
		c := int(float64(p.T-t0) / float64(span) * float64(cols))
		col[min(max(c, 0), cols-1)].add(p)
	}
	for i := range s.buckets {
		b := &s.buckets[i]
		if b.n == 0 {
			continue
		}
		place(b.min)
		if b.max != b.min {
			place(b.max)
		}
	}
	out := make([]Point, 0, 2*cols)
	for i := range col {
		c := &col[i]
		switch {
		case c.n == 0:
		case c.min == c.max:
			out = append(out, c.min)
		case c.min.T <= c.max.T:
			out = append(out, c.min, c.max)
		default:
			out = append(out, c.max, c.min)
		}
	}
	return out
}
