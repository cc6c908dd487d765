package route

import (
	"context"
	"math"
	"os"
	"testing"
)

// The documented example policy compiles, with its shares and watched arms.
func TestExamplePolicy(t *testing.T) {
	b, err := os.ReadFile("testdata/support-bot.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(b)
	if err != nil {
		t.Fatal(err)
	}
	c, err := compile(context.Background(), "support-bot", 1, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	sh := c.shares()
	if math.Abs(sh["teacher"]-90) > 1e-9 || math.Abs(sh["student"]-10) > 1e-9 {
		t.Errorf("shares %v, want teacher 90, student 10", sh)
	}
	if !c.watched["student"] || !c.watched["support-student-v4"] || c.watched["teacher"] {
		t.Errorf("watched %v, want the student and the shadow target", c.watched)
	}
	if c.schema == nil || c.regex == nil || c.Rollback.Window != 200 {
		t.Errorf("validators or rollback not compiled: %+v", c)
	}
}

// Weighted rendezvous hashing: shares follow the weights; with two arms,
// raising the candidate's weight moves users only onto it; with more, a
// change of total variation d moves few more than d of the users.
func TestRendezvous(t *testing.T) {
	w := func(ws ...float64) *compiled {
		p := &Policy{Sticky: &Sticky{Key: "user"}}
		for i := range ws {
			p.Arms = append(p.Arms, Arm{Model: string(rune('a' + i)), Weight: &ws[i]})
		}
		cp, err := compile(context.Background(), "r", 1, p, nil)
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	const n = 20000
	check := func(name string, before, after *compiled, want []float64, tv, maxMoved float64, onlyTo int) {
		counts := make([]int, len(want))
		moved := 0
		for i := range n {
			c := testCall("user-" + itoa(i))
			x, y := before.pick(c), after.pick(c)
			counts[x]++
			if x != y {
				moved++
				if onlyTo >= 0 && y != onlyTo {
					t.Errorf("%s: a user moved from arm %d to arm %d; only arm %d grew", name, x, y, onlyTo)
				}
			}
		}
		for i, p := range want {
			sigma := math.Sqrt(n * p * (1 - p))
			if math.Abs(float64(counts[i])-n*p) > 4*sigma {
				t.Errorf("%s: arm %d got %d of %d, want %.0f ± %.0f (4σ)", name, i, counts[i], n, n*p, 4*sigma)
			}
		}
		frac := float64(moved) / n
		t.Logf("%s: %.1f%% of users moved for a change of total variation %.0f%%", name, 100*frac, 100*tv)
		if frac > maxMoved {
			t.Errorf("%s: %.1f%% of users moved, want at most %.0f%%", name, 100*frac, 100*maxMoved)
		}
	}
	check("two arms 90/10 → 80/20", w(90, 10), w(80, 20), []float64{0.9, 0.1}, 0.1, 0.1+0.01, 1)
	check("three arms 70/20/10 → 60/30/10", w(70, 20, 10), w(60, 30, 10), []float64{0.7, 0.2, 0.1}, 0.1, 0.2, -1)
}
