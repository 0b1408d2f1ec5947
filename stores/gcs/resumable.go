package gcs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"gocloud.dev/blob"

	"github.com/mlsidecar/collector/stores"
	"github.com/mlsidecar/collector/stores/internal/escape"
	"github.com/mlsidecar/collector/stores/internal/parts"
)

// chunkUnit is GCS's chunk granularity: every chunk of a session but the
// last is a multiple of it.
const chunkUnit = 256 << 10

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// resumableUploader uploads large objects through GCS resumable upload
// sessions (uploadType=resumable), over HTTP with a client built from the
// bucket's credentials:
//
//   - GCS takes the object's metadata when the session starts, before a part
//     is sent. A new upload therefore reads the file once for its SHA-256 and
//     CRC32C first, the way the ordinary path does: the session is started
//     with the SHA-256 in the metadata (HashMetadataKey) and the CRC32C in the
//     object resource, so the object never exists without its hash, and GCS
//     refuses to commit bytes whose CRC32C differs from the file's. A resumed
//     upload reads the file once.
//   - Parts are sent in order, one at a time (a session takes its bytes in
//     order), as chunks of PartSize bytes, which must be a multiple of
//     256 KiB; the last one carries the whole file's CRC32C in X-Goog-Hash,
//     which GCS checks against the object before it commits it.
//   - After a restart, a status query (PUT with "Content-Range: bytes */SIZE")
//     tells how many bytes the session holds; those are read again for the
//     hash, not sent. A session GCS no longer knows (404, 410; they live a
//     week) or one already completed ends the upload at once when the object
//     holds the file whole, with its SHA-256; otherwise the upload starts over.
//   - Abort cancels the session (DELETE).
type resumableUploader struct {
	api    *uploadAPI
	prefix string
	b      *blob.Bucket // rooted at prefix
}

// Upload implements stores.Uploader. The parts are sent one at a time, in
// order, whatever concurrency says: a session takes its bytes in order.
func (u *resumableUploader) Upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, _ int, journal stores.Journal) ([]byte, error) {
	sum, err := u.upload(ctx, r, p, metadata, journal)
	return sum, stores.Redact(err) // an HTTP error quotes the session URI
}

func (u *resumableUploader) upload(ctx context.Context, r io.ReaderAt, p *stores.Progress, metadata map[string]string, journal stores.Journal) ([]byte, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	if p.PartSize%chunkUnit != 0 {
		return nil, fmt.Errorf("upload %q: part size %d is not a multiple of 256 KiB, which GCS needs of every chunk but the last", p.Key, p.PartSize)
	}
	session, committed := "", int64(0)
	if p.ID != "" {
		st := sessionState{gone: true} // not a session of this endpoint
		if u.api.ours(p.ID) {
			var err error
			if st, err = u.api.status(ctx, p.ID, p.Size); err != nil {
				return nil, fmt.Errorf("upload %q: ask the upload session what it holds: %w", p.Key, err)
			}
		}
		if st.gone || st.done || st.committed > p.Size {
			// Completed before a crash that lost the record, or gone: done
			// if the object holds this file, else start over.
			sum, there, err := parts.AlreadyThere(ctx, u.b, r, p)
			if err != nil || there {
				return sum, err
			}
		} else {
			session, committed = p.ID, st.committed
		}
	}
	var want *fileSums // the sums a new session was started with
	if session == "" {
		sums, err := hashFile(ctx, r, p)
		if err != nil {
			return nil, err
		}
		if session, err = u.api.start(ctx, escape.GCSKey(u.prefix+p.Key), p.Size, parts.WithHash(metadata, sums.sha256), sums.crc32c); err != nil {
			return nil, fmt.Errorf("upload %q: start a resumable upload: %w", p.Key, err)
		}
		want = &sums
	}
	t := parts.NewTracker(p, journal)
	if err := t.Start(ctx, session, committedParts(p, committed)); err != nil {
		return nil, err
	}
	return u.send(ctx, r, p, session, committed, t, want)
}

// send reads the whole file in parts, in order, hashing every byte, and
// sends what follows the committed bytes to the session. The last request
// carries the file's CRC32C and, once GCS has checked it, commits the object.
func (u *resumableUploader) send(ctx context.Context, r io.ReaderAt, p *stores.Progress, session string, committed int64, t *parts.Tracker, want *fileSums) ([]byte, error) {
	h := newFileHash()
	buf := make([]byte, min(p.PartSize, p.Size))
	finish := func() (string, error) {
		got := h.sums()
		if want != nil && (!bytes.Equal(got.sha256, want.sha256) || got.crc32c != want.crc32c) {
			return "", fmt.Errorf("upload %q: the file changed while it was read", p.Key)
		}
		if err := parts.Verify(r, p.Key); err != nil {
			return "", err
		}
		var crc [4]byte
		binary.BigEndian.PutUint32(crc[:], got.crc32c)
		return "crc32c=" + base64.StdEncoding.EncodeToString(crc[:]), nil
	}
	if p.Size == 0 {
		checksum, err := finish()
		if err != nil {
			return nil, err
		}
		if _, err := u.api.put(ctx, session, nil, 0, 0, checksum); err != nil {
			return nil, fmt.Errorf("upload %q: %w", p.Key, err)
		}
		return h.sums().sha256, nil
	}
	for n := int32(1); int64(n) <= p.NumParts(); n++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		off, size := p.PartRange(n)
		data := buf[:size]
		if k, err := r.ReadAt(data, off); k < len(data) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read part %d of %q at %d: %w", n, p.Key, off, err)
		}
		h.Write(data)
		end := off + size
		if end <= committed {
			continue // the session holds it: read for the hash only
		}
		var checksum string
		if end == p.Size {
			var err error
			if checksum, err = finish(); err != nil {
				return nil, err
			}
		}
		// GCS may keep less than it was sent: send the rest until it holds
		// the part, as long as each answer shows progress.
		for committed < end {
			from := max(committed, off)
			st, err := u.api.put(ctx, session, data[from-off:], from, p.Size, checksum)
			if err != nil {
				if ctx.Err() != nil {
					err = ctx.Err() // stopped: whatever the request failed with
				}
				return nil, fmt.Errorf("upload part %d of %q: %w", n, p.Key, err)
			}
			switch {
			case st.done && end == p.Size:
				committed = end
			case st.done:
				return nil, fmt.Errorf("upload part %d of %q: GCS completed the object before its last part", n, p.Key)
			case st.committed <= from || st.committed > end:
				return nil, fmt.Errorf("upload part %d of %q: GCS holds %d bytes after a chunk of bytes %d-%d", n, p.Key, st.committed, from, end-1)
			default:
				committed = st.committed
			}
		}
		if err := t.Add(ctx, stores.Part{Number: n, Size: size, Checksum: parts.Checksum(data)}); err != nil {
			return nil, err
		}
	}
	return h.sums().sha256, nil
}

// committedParts returns the parts of p that lie in the first committed
// bytes, with the checksums p recorded for them.
func committedParts(p *stores.Progress, committed int64) map[int32]stores.Part {
	done := map[int32]stores.Part{}
	recorded := p.Recorded()
	for n := int32(1); int64(n) <= p.NumParts(); n++ {
		off, size := p.PartRange(n)
		if off+size > committed {
			break
		}
		done[n] = stores.Part{Number: n, Size: size, Checksum: recorded[n].Checksum}
	}
	return done
}

// Abort implements stores.Uploader: it cancels the session.
func (u *resumableUploader) Abort(ctx context.Context, p stores.Progress) error {
	if p.ID == "" || !u.api.ours(p.ID) {
		return nil
	}
	if err := u.api.cancel(ctx, p.ID); err != nil {
		return stores.Redact(fmt.Errorf("abort upload of %q: %w", p.Key, err))
	}
	return nil
}

// fileSums are what GCS and the caller check a file's bytes against.
type fileSums struct {
	sha256 []byte
	crc32c uint32
}

// fileHash takes a file's SHA-256 and CRC32C, fed in order.
type fileHash struct {
	sha hash.Hash
	crc uint32
}

func newFileHash() *fileHash { return &fileHash{sha: sha256.New()} }

func (h *fileHash) Write(b []byte) (int, error) {
	h.sha.Write(b)
	h.crc = crc32.Update(h.crc, castagnoli, b)
	return len(b), nil
}

func (h *fileHash) sums() fileSums { return fileSums{sha256: h.sha.Sum(nil), crc32c: h.crc} }

// hashFile reads p's file only to hash it, 1 MiB at a time.
func hashFile(ctx context.Context, r io.ReaderAt, p *stores.Progress) (fileSums, error) {
	h := newFileHash()
	buf := make([]byte, min(1<<20, max(p.Size, 1)))
	for off := int64(0); off < p.Size; {
		if err := ctx.Err(); err != nil {
			return fileSums{}, err
		}
		data := buf[:min(int64(len(buf)), p.Size-off)]
		if k, err := r.ReadAt(data, off); k < len(data) {
			if err == nil || err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return fileSums{}, fmt.Errorf("read %q at %d: %w", p.Key, off, err)
		}
		h.Write(data)
		off += int64(len(data))
	}
	return h.sums(), nil
}

// sessionState is what an upload session answered.
type sessionState struct {
	committed int64 // bytes the session holds
	done      bool  // the object is committed
	gone      bool  // GCS no longer knows the session
}

// errSessionGone is a chunk sent to a session GCS no longer knows: the next
// attempt finds out from the status query and starts over.
var errSessionGone = errors.New("the upload session no longer exists")

// ours tells whether session is an upload session URI of this endpoint: the
// only place the uploader sends a session URI from the journal to.
func (a *uploadAPI) ours(session string) bool {
	u, err := url.Parse(session)
	return err == nil && u.Scheme == a.endpoint.Scheme && u.Host == a.endpoint.Host &&
		strings.HasPrefix(u.Path, "/upload/") && u.Query().Get("upload_id") != ""
}

// start starts an upload session of object name (escaped) with its metadata
// and the file's CRC32C, and returns the session URI.
func (a *uploadAPI) start(ctx context.Context, name string, size int64, metadata map[string]string, crc uint32) (string, error) {
	var crcBytes [4]byte
	binary.BigEndian.PutUint32(crcBytes[:], crc)
	body, err := json.Marshal(map[string]any{
		"name":        name,
		"contentType": "application/octet-stream",
		"metadata":    metadata,
		"crc32c":      base64.StdEncoding.EncodeToString(crcBytes[:]),
	})
	if err != nil {
		return "", err
	}
	u := *a.endpoint
	u.Path = "/upload/storage/v1/b/" + a.bucket + "/o"
	u.RawQuery = url.Values{"uploadType": {"resumable"}, "name": {name}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json; charset=UTF-8")
	req.Header.Set("X-Upload-Content-Type", "application/octet-stream")
	req.Header.Set("X-Upload-Content-Length", strconv.FormatInt(size, 10))
	resp, err := a.client.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return "", apiError(resp)
	}
	session := resp.Header.Get("Location")
	if !a.ours(session) {
		return "", fmt.Errorf("GCS answered %d without a session URI of %s", resp.StatusCode, a.endpoint.Host)
	}
	return session, nil
}

// status asks the session how many of the file's size bytes it holds.
func (a *uploadAPI) status(ctx context.Context, session string, size int64) (sessionState, error) {
	st, err := a.put(ctx, session, nil, 0, size, "")
	if errors.Is(err, errSessionGone) {
		return sessionState{gone: true}, nil
	}
	return st, err
}

// put sends data as the bytes of the file at offset from (of size bytes in
// all), with checksum (an X-Goog-Hash value) when it is the last chunk. With
// no data it sends "Content-Range: bytes */SIZE": a status query, which
// also completes an object whose bytes the session holds, an empty one
// included.
func (a *uploadAPI) put(ctx context.Context, session string, data []byte, from, size int64, checksum string) (sessionState, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, session, bytes.NewReader(data))
	if err != nil {
		return sessionState{}, err
	}
	req.ContentLength = int64(len(data))
	if len(data) == 0 {
		req.Body = http.NoBody
		req.Header.Set("Content-Range", fmt.Sprintf("bytes */%d", size))
	} else {
		req.Header.Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, from+int64(len(data))-1, size))
	}
	if checksum != "" {
		req.Header.Set("X-Goog-Hash", checksum)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return sessionState{}, err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case http.StatusOK, http.StatusCreated:
		return sessionState{committed: size, done: true}, nil
	case http.StatusPermanentRedirect: // "resume incomplete"
		committed, err := committedBytes(resp.Header.Get("Range"))
		if err != nil {
			return sessionState{}, err
		}
		return sessionState{committed: committed}, nil
	case http.StatusNotFound, http.StatusGone:
		return sessionState{}, errSessionGone
	}
	return sessionState{}, apiError(resp)
}

// committedBytes reads a 308's Range header, "bytes=0-LAST": LAST+1 bytes;
// none when there is no header.
func committedBytes(h string) (int64, error) {
	if h == "" {
		return 0, nil
	}
	last, ok := strings.CutPrefix(h, "bytes=0-")
	n, err := strconv.ParseInt(last, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("GCS answered 308 with an unexpected Range %q", h)
	}
	return n + 1, nil
}

// cancel ends a session. 499 is GCS's answer to a cancelled one; a session
// already gone is not an error.
func (a *uploadAPI) cancel(ctx context.Context, session string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, session, nil)
	if err != nil {
		return err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch resp.StatusCode {
	case 499, http.StatusOK, http.StatusNoContent, http.StatusNotFound, http.StatusGone:
		return nil
	}
	return apiError(resp)
}

// apiError describes an answer of the JSON API that is not a success, with
// the message of its error body when it has one.
func apiError(resp *http.Response) error {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	msg := strings.TrimSpace(string(data))
	if json.Unmarshal(data, &body) == nil && body.Error.Message != "" {
		msg = body.Error.Message
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	return &httpError{status: resp.StatusCode, text: resp.Status, msg: msg}
}

// httpError is an answer of the JSON API that is not a success. Its
// HTTPStatusCode tells the caller a refusal (a 4xx) from a failure that may
// pass.
type httpError struct {
	status    int
	text, msg string
}

func (e *httpError) Error() string {
	if e.msg == "" {
		return "GCS answered " + e.text
	}
	return "GCS answered " + e.text + ": " + e.msg
}

// HTTPStatusCode is the answer's HTTP status.
func (e *httpError) HTTPStatusCode() int { return e.status }

// drain reads what is left of a response so that its connection can be
// used again.
func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
}
