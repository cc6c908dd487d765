package web

import (
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/foundryhq/foundry/econ"
)

// funcs are the helpers templates format numbers, times and links with.
var funcs = template.FuncMap{
	"time":    fmtTime,
	"isotime": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"ms":      fmtMS,
	"dur":     func(d time.Duration) string { return fmtMS(float64(d) / 1e6) },
	"usd":     fmtUSD,
	"int": func(v any) string {
		switch n := v.(type) {
		case int:
			return fmtInt(int64(n))
		case int64:
			return fmtInt(n)
		case float64:
			return fmtInt(int64(math.Round(n)))
		}
		return fmt.Sprint(v)
	},
	"pct": fmtPct,
	"statusClass": func(code int) string {
		switch {
		case code == 0:
			return "unknown"
		case code < 400:
			return "ok"
		case code == 429 || code < 500:
			return "warn"
		default:
			return "err"
		}
	},
	"add": func(a, b int) int { return a + b },
	"mul": func(a, b float64) float64 { return a * b },
	"fly": func(kind, icon string, c *flywheelCard) struct {
		Kind, Icon string
		Card       *flywheelCard
	} {
		return struct {
			Kind, Icon string
			Card       *flywheelCard
		}{kind, icon, c}
	},
	"loss": func(v *float64) string { return strconv.FormatFloat(*v, 'f', 4, 64) },
	"secs": func(s float64) string { return fmtMS(s * 1000) },
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"div": func(a, b int64) int64 {
		if b == 0 {
			return 0
		}
		return a / b
	},
	"deref": func(f *float64) float64 {
		if f == nil {
			return 0
		}
		return *f
	},
}

// fmtTime shows a time compactly, in UTC; app.js rewrites it to the viewer's
// local time from the datetime attribute.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("Jan 2 15:04:05")
}

func fmtMS(ms float64) string {
	switch {
	case ms <= 0:
		return "—"
	case ms < 1:
		return "<1 ms"
	case ms < 1000:
		return fmt.Sprintf("%.0f ms", ms)
	case ms < 60_000:
		return fmt.Sprintf("%.2f s", ms/1000)
	default:
		return (time.Duration(ms) * time.Millisecond).Round(time.Second).String()
	}
}

func fmtUSD(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case math.Abs(v) < 0.01:
		return "$" + strconv.FormatFloat(v, 'f', 5, 64)
	case math.Abs(v) < 100:
		return fmt.Sprintf("$%.2f", v)
	default:
		return "$" + fmtInt(int64(math.Round(v)))
	}
}

func fmtPct(v float64) string {
	if v == 0 {
		return "0%"
	}
	if v < 0.001 {
		return "<0.1%"
	}
	return fmt.Sprintf("%.1f%%", v*100)
}

// fmtInt writes 1234567 as 1,234,567.
func fmtInt(n int64) string { return econ.FormatCount(n) }

// withParam returns v encoded with key set to val ("" removes it).
func withParam(v url.Values, key, val string) string {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	if val == "" {
		c.Del(key)
	} else {
		c.Set(key, val)
	}
	return c.Encode()
}

func sortKeyValues(kv []keyValue) {
	slices.SortFunc(kv, func(a, b keyValue) int { return strings.Compare(a.Key, b.Key) })
}
