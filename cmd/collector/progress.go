package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
)

// newProgress returns the restore's progress report: a bar redrawn in place
// when w is a terminal, else a log line every few seconds and at the end.
func newProgress(log *slog.Logger, w io.Writer) func(done, total int, bytesDone, bytesTotal int64) {
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			return func(done, total int, bytesDone, bytesTotal int64) {
				const width = 30
				filled := width
				if bytesTotal > 0 {
					filled = int(int64(width) * bytesDone / bytesTotal)
				}
				fmt.Fprintf(w, "\rrestoring [%s%s] %d/%d files, %s/%s", strings.Repeat("#", filled),
					strings.Repeat(" ", width-filled), done, total, humanBytes(bytesDone), humanBytes(bytesTotal))
				if done == total {
					fmt.Fprintln(w)
				}
			}
		}
	}
	var last time.Time
	return func(done, total int, bytesDone, bytesTotal int64) {
		if done < total && time.Since(last) < 2*time.Second {
			return
		}
		last = time.Now()
		log.Info("restoring", "files", done, "of", total, "bytes", bytesDone, "of_bytes", bytesTotal)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
