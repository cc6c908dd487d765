package route

import (
	"context"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
)

// JudgeAgree is an Agree that asks j which answer better meets rubric, the
// primary's or the shadow's (with position swap): they agree unless the
// judge prefers the primary in both orders, so a tie or a better shadow
// counts as agreement.
func JudgeAgree(j *judge.Judge, rubric string) Agree {
	return func(ctx context.Context, req *api.ChatRequest, primary, shadow *api.ChatResponse) (bool, error) {
		if len(primary.Choices) == 0 || len(shadow.Choices) == 0 {
			return len(primary.Choices) == len(shadow.Choices), nil
		}
		p, err := j.Compare(ctx, req.Messages, primary.Choices[0].Message, shadow.Choices[0].Message, rubric)
		if err != nil {
			return false, err
		}
		return p.Winner != judge.WinnerA, nil
	}
}
