package eval

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"

	"github.com/foundryhq/foundry/judge"
)

// NewHTTP returns a Chatter for the OpenAI-compatible API at baseURL (the
// gateway's /v1) whose calls carry "X-Foundry-Tags: <tags>" and, as
// X-Foundry-Metadata, the eval's id, candidate and example, so that the
// captured calls of an eval can be found (foundry logs --metadata
// eval_id=ID). Use tags "eval" for candidates and "judge,eval" for the judge.
func NewHTTP(baseURL, apiKey, tags string) *judge.HTTP {
	h := judge.NewHTTP(baseURL, apiKey)
	h.Tags = tags
	h.Client = &http.Client{Transport: metadataTransport{http.DefaultTransport}}
	return h
}

type metadataKey struct{}

// withMetadata adds md to the metadata the calls made with ctx carry.
func withMetadata(ctx context.Context, md map[string]string) context.Context {
	merged := map[string]string{}
	if old, ok := ctx.Value(metadataKey{}).(map[string]string); ok {
		maps.Copy(merged, old)
	}
	maps.Copy(merged, md)
	return context.WithValue(ctx, metadataKey{}, merged)
}

// metadataTransport sets X-Foundry-Metadata from the request's context.
type metadataTransport struct{ base http.RoundTripper }

func (t metadataTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if md, ok := r.Context().Value(metadataKey{}).(map[string]string); ok && len(md) > 0 {
		b, err := json.Marshal(md)
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Header.Set("X-Foundry-Metadata", string(b))
	}
	return t.base.RoundTrip(r)
}
