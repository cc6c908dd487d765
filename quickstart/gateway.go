package quickstart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/capture"
	"github.com/foundryhq/foundry/econ"
	"github.com/foundryhq/foundry/gateway"
	"github.com/foundryhq/foundry/pricing"
	"github.com/foundryhq/foundry/provider"
	"github.com/foundryhq/foundry/route"
	"github.com/foundryhq/foundry/store"
	"github.com/foundryhq/foundry/web"
)

// stack is the gateway as `foundry serve` assembles it: capture, routes,
// the dashboard and the costs API, on one listener.
type stack struct {
	st     store.Store
	prices *pricing.Table
	reg    *provider.Registry
	capt   *capture.Capturer
	router *route.Router
	srv    *gateway.Server
	url    string // http://host:port
	key    string // admin key, "" in open mode
	client *http.Client

	cancel context.CancelFunc
	done   chan error
}

func startStack(ctx context.Context, st store.Store, reg *provider.Registry, prices *pricing.Table, ln net.Listener, adminKey, dataDir string, log *slog.Logger) (*stack, error) {
	s := &stack{st: st, prices: prices, reg: reg, key: adminKey, url: "http://" + ln.Addr().String(),
		client: &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	s.capt = capture.New(st, capture.Options{Prices: prices, Logger: log})
	if err := s.capt.Start(sctx); err != nil {
		cancel()
		return nil, err
	}
	s.router = route.New(route.Options{Store: st, Logger: log, Resolve: route.RegistryResolver(reg), Recorder: s.capt})
	if err := s.router.Start(sctx); err != nil {
		cancel()
		return nil, err
	}
	srv, err := gateway.New(sctx, gateway.Options{Registry: reg, Store: st, Plugins: []provider.Plugin{s.capt},
		Middleware: []provider.Middleware{s.router.Middleware}, AdminKey: adminKey, Flusher: s.capt, Logger: log})
	if err != nil {
		cancel()
		return nil, err
	}
	s.srv = srv
	web.New(web.Options{Store: st, AdminKey: adminKey, Flusher: s.capt, Logger: log,
		DataDir: dataDir, Prices: prices, RouteStats: s.router.Stats}).Mount(srv)
	srv.Handle("GET /api/v1/costs", srv.AdminOnly(econ.NewHandler(st, prices, log).ServeHTTP))
	s.router.Mount(srv)
	s.done = make(chan error, 1)
	go func() { s.done <- srv.Serve(sctx, ln, 10*time.Second) }()
	return s, nil
}

// close drains the gateway, then flushes shadow calls and capture.
func (s *stack) close() error {
	s.cancel()
	err := <-s.done
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = errors.Join(err, s.router.Close(ctx))
	return errors.Join(err, s.capt.Close(ctx))
}

// chatResult is what the replaying app gets back.
type chatResult struct {
	RequestID string
	Answer    string
	Model     string
	Provider  string
	Usage     api.Usage
}

// chat sends one chat completion through the gateway the way an app using
// an official OpenAI SDK does (same path, body and headers), with Foundry's
// tag and metadata headers.
func (s *stack) chat(ctx context.Context, req *api.ChatRequest, tags []string, md map[string]string) (*chatResult, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/v1/chat/completions", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Content-Type", "application/json")
	if s.key != "" {
		hr.Header.Set("Authorization", "Bearer "+s.key)
	}
	if len(tags) > 0 {
		hr.Header.Set("X-Foundry-Tags", strings.Join(tags, ","))
	}
	if len(md) > 0 {
		b, _ := json.Marshal(md)
		hr.Header.Set("X-Foundry-Metadata", string(b))
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("chat %s: gateway answered %d: %s", req.Model, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	var cr api.ChatResponse
	if err := json.Unmarshal(b, &cr); err != nil {
		return nil, fmt.Errorf("chat %s: %w", req.Model, err)
	}
	out := &chatResult{RequestID: resp.Header.Get("X-Request-Id"), Model: cr.Model, Provider: resp.Header.Get("X-Foundry-Provider")}
	if len(cr.Choices) > 0 {
		out.Answer = cr.Choices[0].Message.Content.String()
	}
	if cr.Usage != nil {
		out.Usage = *cr.Usage
	}
	return out, nil
}

// feedback posts a score for a request, as an app's thumbs up/down button does.
func (s *stack) feedback(ctx context.Context, requestID string, score float64, label string) error {
	body, _ := json.Marshal(gateway.FeedbackJSON{RequestID: requestID, Score: &score, Label: label})
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url+"/api/v1/feedback", bytes.NewReader(body))
	if err != nil {
		return err
	}
	hr.Header.Set("Content-Type", "application/json")
	if s.key != "" {
		hr.Header.Set("Authorization", "Bearer "+s.key)
	}
	resp, err := s.client.Do(hr)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("feedback on %s: %d: %s", requestID, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	return nil
}
