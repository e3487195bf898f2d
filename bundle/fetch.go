package bundle

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Source yields a bundle's files. etag is the ETag of the bundle now
// serving ("" for none); a source that can tell it has not changed
// returns notModified and no files.
type Source interface {
	Fetch(ctx context.Context, etag string) (files Files, newETag string, notModified bool, err error)
	String() string
}

// PathSource reads a directory or .tar.gz on every fetch; the keeper
// skips a bundle whose digest it already serves.
type PathSource struct {
	Path   string
	Limits Limits
}

// Fetch reads the path.
func (s PathSource) Fetch(context.Context, string) (Files, string, bool, error) {
	f, err := Read(s.Path, s.Limits)
	return f, "", false, err
}

func (s PathSource) String() string { return s.Path }

// HTTPSource downloads a .tar.gz with a conditional GET (If-None-Match),
// bounded in size (Limits.ArchiveBytesMax) and time (Timeout).
type HTTPSource struct {
	URL     string
	Client  *http.Client // default: a client with Timeout
	Timeout time.Duration
	Limits  Limits
}

// DefaultFetchTimeout bounds one download.
const DefaultFetchTimeout = 30 * time.Second

// Fetch GETs the URL; a 304 keeps the current bundle.
func (s HTTPSource) Fetch(ctx context.Context, etag string) (Files, string, bool, error) {
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultFetchTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL, nil)
	if err != nil {
		return nil, "", false, fmt.Errorf("bundle url: %w", err)
	}
	if etag != "" {
		req.Header.Set("If-None-Match", etag)
	}
	client := s.Client
	if client == nil {
		client = &http.Client{Timeout: timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", false, fmt.Errorf("bundle: fetching %s: %w", s.URL, err)
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusNotModified:
		return nil, etag, true, nil
	case http.StatusOK:
	default:
		return nil, "", false, fmt.Errorf("bundle: fetching %s: HTTP %s", s.URL, resp.Status)
	}
	max := s.Limits.or(DefaultLimits()).ArchiveBytesMax
	body, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, "", false, fmt.Errorf("bundle: fetching %s: %w", s.URL, err)
	}
	if int64(len(body)) > max {
		return nil, "", false, fmt.Errorf("bundle: %w: %s is over %d bytes", ErrLimit, s.URL, max)
	}
	files, err := ReadTarGz(bytes.NewReader(body), s.Limits)
	return files, resp.Header.Get("ETag"), false, err
}

func (s HTTPSource) String() string { return s.URL }
