// Package upstreamtest holds local HTTP servers that speak the exact wire
// formats of hosted model APIs, for tests across Foundry (gateway, judge,
// eval, quickstart) and for benchmarks. They answer deterministically,
// record every request they receive, and inject faults on demand.
//
// A server listens on 127.0.0.1 only. Script it with Reply functions and
// queued Faults; read back what it received with Requests.
package upstreamtest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// Fault makes one upstream call fail. The zero Fault is no fault.
type Fault struct {
	Status     int           // answer with this HTTP status and an error body (e.g. 500, 429)
	RetryAfter time.Duration // sent as Retry-After (whole seconds, rounded up) with Status
	Message    string        // the error body's message
	// Hang blocks the answer until the client gives up or the server closes
	// (for first-byte and total timeout tests).
	Hang bool
	// DisconnectAfter, for streams, cuts the connection after this many
	// chunks (no [DONE]): a mid-stream upstream failure. 0 means no cut;
	// use -1 to cut right after the headers.
	DisconnectAfter int
}

// Received is one request as the fake upstream saw it.
type Received struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

// recorder keeps received requests and the fault queue, and owns the
// listening server; shared by the fakes.
type recorder struct {
	mu     sync.Mutex
	reqs   []Received
	faults []Fault
	keep   bool // record requests (off for benchmarks)
	closed chan struct{}
	srv    *httptest.Server
}

// serve starts h on 127.0.0.1; with t non-nil the server closes when the test ends.
func (r *recorder) serve(t TB, h http.Handler) {
	r.srv = httptest.NewServer(h)
	if t != nil {
		t.Helper()
		t.Cleanup(r.Close)
	}
}

// Close stops the server, releasing hung calls.
func (r *recorder) Close() {
	select {
	case <-r.closed:
	default:
		close(r.closed)
	}
	r.srv.CloseClientConnections()
	r.srv.Close()
}

// Addr is the listener's address, e.g. "127.0.0.1:34567".
func (r *recorder) Addr() string { return r.srv.Listener.Addr().String() }

// disconnect cuts the client's connection abruptly (a TCP reset after what
// was flushed) and ends the handler: a mid-stream upstream failure.
func disconnect(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			conn.Close()
		}
	}
	panic(http.ErrAbortHandler)
}

func newRecorder() *recorder { return &recorder{keep: true, closed: make(chan struct{})} }

func (r *recorder) record(req *http.Request, body []byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.keep {
		r.reqs = append(r.reqs, Received{Method: req.Method, Path: req.URL.Path, Header: req.Header.Clone(), Body: body})
	}
}

func (r *recorder) nextFault() Fault {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.faults) == 0 {
		return Fault{}
	}
	f := r.faults[0]
	r.faults = r.faults[1:]
	return f
}

// Requests returns a copy of the requests received so far.
func (r *recorder) Requests() []Received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Received(nil), r.reqs...)
}

// Fail queues faults: the next len(faults) calls fail with them, in order.
func (r *recorder) Fail(faults ...Fault) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.faults = append(r.faults, faults...)
}

// Record turns request recording on or off (off for load tests).
func (r *recorder) Record(on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.keep = on
}
