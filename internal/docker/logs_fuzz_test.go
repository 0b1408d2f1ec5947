package docker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
)

// frame writes one frame of the engine's multiplexed stream.
func frame(stream byte, payload []byte) []byte {
	h := make([]byte, 8, 8+len(payload))
	h[0] = stream
	binary.BigEndian.PutUint32(h[4:], uint32(len(payload)))
	return append(h, payload...)
}

type demuxed struct {
	stream  string
	payload []byte
}

// demux reads a multiplexed stream to its end or first error, a payload
// partly or not at all read where read is false.
func demux(data []byte, skip func(i int) bool) ([]demuxed, error) {
	r := &LogReader{body: io.NopCloser(bytes.NewReader(data))}
	var out []demuxed
	for i := 0; ; i++ {
		stream, payload, err := r.Next()
		if err != nil {
			return out, err
		}
		if skip(i) {
			out = append(out, demuxed{stream: stream}) // left for Next to skip
			continue
		}
		b, err := io.ReadAll(payload)
		out = append(out, demuxed{stream, b})
		if err != nil {
			return out, err
		}
	}
}

// FuzzDemux: frames made of the input's pieces, demultiplexed, give each
// piece's stream and bytes back, also where the reader skips a payload
// unread; the stream cut anywhere gives the frames before the cut whole,
// the cut one's bytes up to the cut and io.ErrUnexpectedEOF, or io.EOF at a
// frame's boundary. Any bytes at all: no panic, and no more payload than
// the stream holds.
func FuzzDemux(f *testing.F) {
	f.Add([]byte("2026-12-01T04:00:00.000000001Z one\n\x002026-12-01T04:00:00.000000002Z two\n"), []byte{1, 2}, uint16(20), uint8(0))
	f.Add([]byte("a long line the engine split\x00in two"), []byte{1, 1}, uint16(0), uint8(1))
	f.Add(frame(3, []byte("error from daemon")), []byte{}, uint16(3), uint8(0))
	f.Add([]byte{}, []byte{2}, uint16(0), uint8(0))
	f.Fuzz(func(t *testing.T, data, streams []byte, cut uint16, skipMask uint8) {
		// Any bytes as the engine's stream.
		raw, err := demux(data, func(int) bool { return false })
		total := 0
		for _, d := range raw {
			total += len(d.payload)
		}
		if total+8*len(raw) > len(data) {
			t.Fatalf("%d bytes gave %d frames holding %d bytes", len(data), len(raw), total)
		}
		if err == nil {
			t.Fatal("no error at the end of the stream")
		}

		// Frames of the input's pieces (split at each NUL), streams 1 and 2.
		pieces := bytes.Split(data, []byte{0})
		var stream []byte
		var want []demuxed
		var ends []int // where each frame ends in stream
		for i, p := range pieces {
			s := byte(1)
			if i < len(streams) && streams[i]%2 == 1 {
				s = 2
			}
			stream = append(stream, frame(s, p)...)
			ends = append(ends, len(stream))
			want = append(want, demuxed{map[byte]string{1: "stdout", 2: "stderr"}[s], p})
		}
		skip := func(i int) bool { return skipMask>>(i%8)&1 == 1 }
		got, err := demux(stream, skip)
		if err != io.EOF {
			t.Fatalf("err %v at the end, want io.EOF", err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d frames, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].stream != want[i].stream || !skip(i) && !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("frame %d: %s %q, want %s %q", i, got[i].stream, got[i].payload, want[i].stream, want[i].payload)
			}
		}

		// The same stream cut at n.
		n := int(cut) % (len(stream) + 1)
		got, err = demux(stream[:n], func(int) bool { return false })
		whole := 0
		for whole < len(ends) && ends[whole] <= n {
			whole++
		}
		for i := 0; i < whole; i++ {
			if got[i].stream != want[i].stream || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("cut at %d: frame %d: %s %q, want %s %q", n, i, got[i].stream, got[i].payload, want[i].stream, want[i].payload)
			}
		}
		start := 0
		if whole > 0 {
			start = ends[whole-1]
		}
		switch {
		case n == start:
			if err != io.EOF || len(got) != whole {
				t.Fatalf("cut at a frame's end (%d): %d frames, %v; want %d, io.EOF", n, len(got), err, whole)
			}
		case n-start < 8:
			// A header cut short: io.ReadFull says so.
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != whole {
				t.Fatalf("cut in a header (%d): %d frames, %v; want %d, io.ErrUnexpectedEOF", n, len(got), err, whole)
			}
		default:
			if !errors.Is(err, io.ErrUnexpectedEOF) || len(got) != whole+1 ||
				!bytes.Equal(got[whole].payload, want[whole].payload[:n-start-8]) {
				t.Fatalf("cut in frame %d's payload (%d): %d frames, %v; want %d, io.ErrUnexpectedEOF and its first %d bytes",
					whole, n, len(got), err, whole+1, n-start-8)
			}
		}
	})
}
