package child

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestOutputPassesThroughAndOffersLines: what the command writes reaches the
// pass-through writer byte for byte, however it is cut into writes, and its
// lines come out in order, a partial last line marked as such.
func TestOutputPassesThroughAndOffersLines(t *testing.T) {
	var pass bytes.Buffer
	o := NewOutput("stdout", &pass, 16, 1024)
	written := "epoch 1\nloss 0.5\r\n\nno newline at the end"
	for _, chunk := range []string{"epo", "ch 1\nloss", " 0.5\r\n\n", "no newline at the end"} {
		if n, err := o.Write([]byte(chunk)); n != len(chunk) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", chunk, n, err)
		}
	}
	o.Close()
	if pass.String() != written {
		t.Errorf("passed through %q, want %q", pass.String(), written)
	}
	var got []string
	for l := range o.Lines() {
		if l.Stream != "stdout" || l.Time.IsZero() {
			t.Errorf("line %q: stream %q, time %v", l.Text, l.Stream, l.Time)
		}
		s := string(l.Text)
		if l.Partial {
			s += "<partial>"
		}
		got = append(got, s)
	}
	want := []string{"epoch 1", "loss 0.5\r", "", "no newline at the end<partial>"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("lines = %q, want %q", got, want)
	}
}

// TestOutputSplitsLongLines: a line longer than the limit comes out in
// pieces of the limit, all but the last marked partial; nothing is lost.
func TestOutputSplitsLongLines(t *testing.T) {
	o := NewOutput("stderr", &bytes.Buffer{}, 16, 4)
	o.Write([]byte("abcdefghij\nxy"))
	o.Write([]byte("zuvw\n"))
	o.Close()
	var got []string
	for l := range o.Lines() {
		got = append(got, string(l.Text)+map[bool]string{true: "+", false: ""}[l.Partial])
	}
	want := []string{"abcd+", "efgh+", "ij", "xyzu+", "vw"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("pieces = %q, want %q", got, want)
	}
}

// TestOutputNeverBlocksTheCommand: with nobody reading the lines, a command
// that prints far more lines than the buffer holds runs to its end, every
// byte passes through, and the lines not taken are counted as dropped.
func TestOutputNeverBlocksTheCommand(t *testing.T) {
	var pass bytes.Buffer
	out := NewOutput("stdout", &pass, 8, 1024)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, err := Command{Args: []string{"sh", "-c", "i=0; while [ $i -lt 1000 ]; do echo line $i; i=$((i+1)); done"}, Stdout: out}.Run(ctx)
	out.Close()
	if err != nil || code != 0 {
		t.Fatalf("Run = %d, %v; want 0", code, err)
	}
	if n := strings.Count(pass.String(), "\n"); n != 1000 {
		t.Errorf("passed through %d lines, want 1000", n)
	}
	if got := out.Dropped(); got != 1000-8 {
		t.Errorf("dropped %d lines, want %d (all but the 8 buffered)", got, 1000-8)
	}
	first := <-out.Lines()
	if string(first.Text) != "line 0" {
		t.Errorf("first buffered line %q, want %q", first.Text, "line 0")
	}
}
