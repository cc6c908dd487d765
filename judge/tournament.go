package judge

import (
	"context"
	"errors"
	"fmt"

	"github.com/foundryhq/foundry/api"
)

// TournamentResult is the outcome of a pairwise tournament.
type TournamentResult struct {
	Winner int // index of the answer the judge preferred; -1 when there were none
	// Rounds are the comparisons made, in order: the champion so far (as
	// Compare's a) against the next distinct answer (b).
	Rounds  []Preference
	Garbage int   // rounds the judge answered garbage about (the champion stayed)
	Usage   Usage // the rounds' verdicts' cost when they were made
	Cached  bool  // every round came from the cache
}

// Tournament picks the answer the judge prefers among answers to one
// conversation, by pairwise comparison with position swap: a knock-out in
// order, the champion so far against each next answer. A tie (also a
// position-biased split) or a garbage verdict keeps the champion, so of
// equals the earliest wins; an answer identical to one already compared is
// skipped. n distinct answers cost n-1 comparisons (2 verdicts each,
// cached like every verdict).
func (j *Judge) Tournament(ctx context.Context, conversation, answers []api.Message, rubric string) (TournamentResult, error) {
	res := TournamentResult{Winner: -1, Cached: true}
	seen := map[string]bool{}
	for i, a := range answers {
		text := messageText(a)
		if text == "" || seen[text] {
			continue
		}
		seen[text] = true
		if res.Winner < 0 {
			res.Winner = i
			continue
		}
		p, err := j.Compare(ctx, conversation, answers[res.Winner], a, rubric)
		res.Usage.Add(p.Usage)
		if errors.Is(err, ErrGarbage) {
			res.Garbage++
			res.Cached = false
			continue
		}
		if err != nil {
			return res, fmt.Errorf("judge: tournament round %d: %w", len(res.Rounds)+1, err)
		}
		res.Rounds = append(res.Rounds, p)
		res.Cached = res.Cached && p.Cached
		if p.Winner == WinnerB {
			res.Winner = i
		}
	}
	return res, nil
}
