package report

import (
	"context"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// chromium is the headless browser the render test uses: $COLLECTOR_TEST_CHROMIUM
// (scripts/test.sh sets it, having installed Debian's chromium package where it
// was missing; then the test must run), else chromium on the PATH, else the
// test is skipped.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("COLLECTOR_TEST_CHROMIUM"); p != "" {
		return p
	}
	p, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium on the PATH (scripts/test.sh installs Debian's chromium package)")
	}
	return p
}

// screenshot renders the page at file in headless Chromium, 1200 by 2000
// CSS pixels, and returns the PNG's path and the time it took.
func screenshot(t *testing.T, bin, file string) (string, time.Duration) {
	t.Helper()
	dir := t.TempDir()
	shot := filepath.Join(dir, "shot.png")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
		"--user-data-dir="+filepath.Join(dir, "profile"), "--screenshot="+shot, "--window-size=1200,2000",
		"file://"+file)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	if _, err := os.Stat(shot); err != nil {
		t.Fatalf("no screenshot: %v\n%s", err, out)
	}
	return shot, took
}

func TestRenderInChromium(t *testing.T) {
	bin := chromium(t)
	rep, page, _, _ := dayReport(t)
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page, 0o644); err != nil {
		t.Fatal(err)
	}
	blank := filepath.Join(t.TempDir(), "blank.html")
	if err := os.WriteFile(blank, []byte("<!doctype html><title>blank</title>"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, base := screenshot(t, bin, blank)
	shot, took := screenshot(t, bin, file)
	fi, _ := os.Stat(file)
	t.Logf("headless Chromium: the 24 h report (%d bytes) in %v, a blank page in %v", fi.Size(), took.Round(time.Millisecond), base.Round(time.Millisecond))
	if out := os.Getenv("COLLECTOR_TEST_REPORT_SCREENSHOT"); out != "" {
		data, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	fp, err := os.Open(shot)
	if err != nil {
		t.Fatal(err)
	}
	defer fp.Close()
	img, err := png.Decode(fp)
	if err != nil {
		t.Fatal(err)
	}
	// Every plot fits in the window with the fonts here; a machine whose
	// fonts make the page taller may push the last below it.
	bands := plotAreas(img)
	if got, want := len(bands), len(rep.Plots); got > want || got < want-1 {
		t.Fatalf("%d plot areas in the screenshot (%v); want %d", got, bands, want)
	}
	for i, b := range bands {
		drawn := 0
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if isLineColor(img.At(x, y)) {
					drawn++
				}
			}
		}
		// A line across the plot colours at least a pixel per column.
		if drawn < b.Dx()/2 {
			t.Errorf("plot %d (%s) at %v: %d pixels of a line's colour; want a line across it", i, rep.Plots[i].Title, b, drawn)
		}
	}
}

// plotAreas finds the plots' drawing areas in a screenshot: the bands of
// rows mostly of the plots' background colour.
func plotAreas(img image.Image) []image.Rectangle {
	bg := hexColor(PlotBackground)
	var out []image.Rectangle
	var cur image.Rectangle
	open, gap := false, 0
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		n, x0, x1 := 0, bounds.Max.X, bounds.Min.X
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			if near(img.At(x, y), bg, 3) {
				n++
				x0, x1 = min(x0, x), max(x1, x+1)
			}
		}
		// Grid lines and lines drawn across cut rows short: a row counts
		// when a third of it is background.
		if n > bounds.Dx()/3 {
			if !open {
				cur, open = image.Rect(x0, y, x1, y+1), true
			}
			cur.Min.X, cur.Max.X, cur.Max.Y = min(cur.Min.X, x0), max(cur.Max.X, x1), y+1
			gap = 0
			continue
		}
		if open {
			gap++
			if gap > 6 {
				if cur.Dy() > 40 {
					out = append(out, cur)
				}
				open = false
			}
		}
	}
	if open && cur.Dy() > 40 {
		out = append(out, cur)
	}
	return out
}

func isLineColor(c color.Color) bool {
	for _, p := range palette {
		if near(c, hexColor(p), 40) {
			return true
		}
	}
	return false
}

func hexColor(s string) color.RGBA {
	v, _ := strconv.ParseUint(s[1:], 16, 32)
	return color.RGBA{uint8(v >> 16), uint8(v >> 8), uint8(v), 255}
}

// near says c is within tol of want in each channel.
func near(c color.Color, want color.RGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(a uint32, w uint8) bool { x := int(a>>8) - int(w); return x <= tol && x >= -tol }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}
