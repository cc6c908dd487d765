package judge_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/foundryhq/foundry/api"
	"github.com/foundryhq/foundry/judge"
	"github.com/foundryhq/foundry/upstreamtest"
)

// TestTournament: a fair judge prefers the higher "q N"; the champion of a
// knock-out is the best answer, equals keep the earlier one, duplicates and
// empty answers are skipped, and a second run is all cache hits.
func TestTournament(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, false)
	j := newJudge(t, judge.NewHTTP(e.URL, ""), openCache(t, t.TempDir()+"/cache.db"))
	e.up.OnChat(func(req *api.ChatRequest) upstreamtest.Reply {
		var qa, qb int
		fmt.Sscanf(section(req, "## Answer A"), "q %d", &qa)
		fmt.Sscanf(section(req, "## Answer B"), "q %d", &qb)
		w := "tie"
		switch {
		case qa > qb:
			w = "A"
		case qb > qa:
			w = "B"
		}
		return upstreamtest.Reply{Content: `{"winner": "` + w + `", "reason": "higher q"}`}
	})
	conv := []api.Message{user("Name a prime.")}
	answers := []api.Message{assistant("q 3: four"), assistant("q 7: seven"), assistant(""), assistant("q 3: four"),
		assistant("q 9: eleven"), assistant("q 9: thirteen")}
	res, err := j.Tournament(ctx, conv, answers, "")
	if err != nil {
		t.Fatal(err)
	}
	// Rounds: 0 vs 1 (1 wins), 1 vs 4 (4 wins), 4 vs 5 (tie: 4 stays).
	if res.Winner != 4 || len(res.Rounds) != 3 || res.Usage.Calls != 6 || res.Cached {
		t.Fatalf("tournament %+v, want answer 4 after 3 rounds of 2 calls", res)
	}
	if w := res.Rounds[2].Winner; w != judge.Tie {
		t.Errorf("the last round's winner %q, want a tie", w)
	}
	again, err := j.Tournament(ctx, conv, answers, "")
	if err != nil || again.Winner != 4 || !again.Cached || len(e.chatRequests(t)) != 6 {
		t.Errorf("second run %+v, %v after %d calls; want the same winner from the cache", again, err, len(e.chatRequests(t)))
	}
	if res, err := j.Tournament(ctx, conv, []api.Message{assistant(""), assistant("")}, ""); err != nil || res.Winner != -1 || len(res.Rounds) != 0 {
		t.Errorf("only empty answers: %+v, %v; want no winner and no rounds", res, err)
	}
}
