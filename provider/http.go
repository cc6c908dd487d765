package provider

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// NewHTTPClient returns the HTTP client upstream providers share: connect
// (TCP+TLS) and first-byte (request sent → response headers) timeouts,
// defaults 10s and 60s when zero, and pools sized for a busy gateway. The
// total timeout is applied per call through the request context.
func NewHTTPClient(connect, firstByte time.Duration) *http.Client {
	if connect == 0 {
		connect = 10 * time.Second
	}
	if firstByte == 0 {
		firstByte = 60 * time.Second
	}
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: firstByte,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   512,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// ConnError classifies a transport error of provider name; ctx is the
// caller's context. A cancelled caller is returned as ctx.Err() (the client
// went away; not an upstream failure); everything else becomes an
// *UpstreamError with Status 0, marked Timeout when it timed out.
func ConnError(ctx context.Context, name string, err error) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	ue := &UpstreamError{Provider: name, Message: err.Error(), Err: err}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		ue.Timeout = true
	}
	return ue
}
