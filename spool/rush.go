package spool

import "time"

// Rush hurries the spool for a notice that the machine is about to go: a
// chunk open now is due to be sealed (Writer.Due says so at its producer's
// next look), and from now on every sealed chunk is uploaded at once,
// whatever the interval, failed ones tried again without waiting out their
// backoff.
func (s *Spool) Rush() {
	s.rushAt.Store(time.Now().UnixNano())
	s.mu.Lock()
	for _, u := range s.queue {
		u.after = time.Time{}
	}
	select {
	case <-s.rushDone:
	default:
		close(s.rushDone)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// rushed tells whether a chunk opened at opened was open at a Rush.
func (s *Spool) rushed(opened time.Time) bool {
	at := s.rushAt.Load()
	return at != 0 && opened.UnixNano() <= at
}

// Rushed is closed by Rush: a producer that looks at its writers' Due only
// now and then (at each sample) can wait on it to seal at once.
func (s *Spool) Rushed() <-chan struct{} { return s.rushDone }
