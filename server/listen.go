package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Connection limits applied when Config leaves them zero. Every purser
// request is short (no endpoint long-polls: approvals are polled), so the
// write timeout only has to cover the slowest handler, a plugin reload.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultConnectionsMax    = 1024
)

// connLimits returns the connection settings with defaults filled in.
func (c Config) connLimits() (readHeader, read, write, idle time.Duration, connsMax int) {
	def := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	connsMax = c.ConnectionsMax
	if connsMax <= 0 {
		connsMax = DefaultConnectionsMax
	}
	return def(c.ReadHeaderTimeout, DefaultReadHeaderTimeout), def(c.ReadTimeout, DefaultReadTimeout),
		def(c.WriteTimeout, DefaultWriteTimeout), def(c.IdleTimeout, DefaultIdleTimeout), connsMax
}

// limitListener accepts at most max connections at once. Beyond that,
// Accept waits for one to close: new clients wait in the kernel's accept
// queue (they are not refused) while the timeouts cut slow clients loose.
type limitListener struct {
	net.Listener
	slots chan struct{}
	done  chan struct{}
	once  sync.Once
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), done: make(chan struct{})}
}

func (l *limitListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

func (l *limitListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite keeps net/http's half-close (used before closing a connection
// whose body was too large) working through the wrapper.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// closeRefused closes the connection after any error answer given before
// the request body was read to its end (a bad token, a refused origin, a
// body too large). net/http would otherwise read up to 256 KiB of the
// unread body to reuse the connection, so a client trickling a body could
// hold it until the read timeout without ever being authenticated.
func closeRefused(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			next.ServeHTTP(w, r)
			return
		}
		body := &eofReader{ReadCloser: r.Body}
		r.Body = body
		next.ServeHTTP(&refuseWriter{ResponseWriter: w, body: body}, r)
	})
}

// eofReader records whether the body was read to its end.
type eofReader struct {
	io.ReadCloser
	mu  sync.Mutex
	eof bool
}

func (b *eofReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) {
		b.mu.Lock()
		b.eof = true
		b.mu.Unlock()
	}
	return n, err
}

func (b *eofReader) sawEOF() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.eof
}

type refuseWriter struct {
	http.ResponseWriter
	body *eofReader
}

func (w *refuseWriter) WriteHeader(code int) {
	if code >= 400 && !w.body.sawEOF() {
		w.Header().Set("Connection", "close")
		// An expired read deadline makes the server's post-handler drain
		// fail at once instead of waiting for the trickled bytes.
		_ = http.NewResponseController(w.ResponseWriter).SetReadDeadline(time.Unix(1, 0))
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *refuseWriter) Write(p []byte) (int, error) { return w.ResponseWriter.Write(p) }

// Unwrap lets http.ResponseController reach the connection.
func (w *refuseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
