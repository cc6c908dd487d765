package dataset

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSpecDecodesTimesAndPlugins(t *testing.T) {
	s, err := ParseSpec("s.yaml", []byte(`name: t
sources:
  - store: {routes: [a], since: 2026-01-02T03:04:05Z, until: 2026-02-01, min_score: 0.5, has_feedback: true, metadata: {team: core}}
judge: {model: gpt-4o, rubric: helpful}
`))
	if err != nil {
		t.Fatal(err)
	}
	sel := s.Sources[0].Store
	if !sel.Since.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) || sel.Until.IsZero() || *sel.MinScore != 0.5 || !*sel.HasFeedback || sel.Metadata["team"] != "core" {
		t.Errorf("selection %+v", sel)
	}
	if _, err := s.Stages(t.Context(), nil, t.TempDir()); err == nil {
		t.Error("a judge section without a judge plug-in built")
	}
	var got any
	stages, err := s.Stages(t.Context(), map[string]Plugin{"judge": func(_ context.Context, cfg any) (Stage, error) {
		got = cfg
		return RowStage{StageName: "judge", Decide: func(context.Context, *Example, *Out) (string, string, error) { return "", "", nil }}, nil
	}}, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, st := range stages {
		names = append(names, st.Name())
	}
	if strings.Join(names, ",") != "validate,judge,dedupe,scrub,split" {
		t.Errorf("stages %v", names)
	}
	if m, ok := got.(map[string]any); !ok || m["model"] != "gpt-4o" {
		t.Errorf("judge config %#v", got)
	}
}
