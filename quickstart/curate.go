package quickstart

import (
	"context"
	"fmt"

	"github.com/foundryhq/foundry/dataset"
)

// feedbackStage drops calls that users marked as bad (a feedback score
// below min): curation's cheapest signal. It runs in the dataset
// pipeline's plug-in slot for judge stages (after validate, before dedupe).
func feedbackStage(min float64) dataset.Plugin {
	return func(ctx context.Context, _ any) (dataset.Stage, error) {
		return dataset.RowStage{StageName: "feedback", Decide: func(ctx context.Context, ex *dataset.Example, out *dataset.Out) (string, string, error) {
			if s := ex.Meta.Score; s != nil && *s < min {
				return "thumbs down", fmt.Sprintf("score %.1f", *s), nil
			}
			return "", "", nil
		}}, nil
	}
}
