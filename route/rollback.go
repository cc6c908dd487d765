package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/foundryhq/foundry/store"
)

// AutoRollbackActor is the actor of the versions automatic rollback writes.
const AutoRollbackActor = "auto-rollback"

// checkRollback rolls route name back to its previous version when a
// watched arm's rolling quality is under a bar with enough observations.
// Several replicas may decide at once: the version check lets one win.
func (r *Router) checkRollback(ctx context.Context, name string) error {
	st := r.lookup(name)
	if st == nil || st.c.Rollback == nil {
		return nil
	}
	cp, rb := st.c, st.c.Rollback
	reason := ""
	arms := make([]string, 0, len(cp.watched))
	for a := range cp.watched {
		arms = append(arms, a)
	}
	slices.Sort(arms)
	for _, arm := range arms {
		model := arm
		for _, a := range cp.Arms {
			if a.Name == arm {
				model = a.Model
			}
		}
		as := st.arm(arm, model)
		if rb.MinFeedback != nil {
			q, err := r.feedback(ctx, cp, arm)
			if err != nil {
				return fmt.Errorf("route %q: rollback check: %w", name, err)
			}
			as.mu.Lock()
			as.feedback = q
			as.mu.Unlock()
			if reason == "" && q != nil && q.N >= rb.MinObservations && q.Value < *rb.MinFeedback {
				reason = fmt.Sprintf("arm %q: mean feedback score %.3f over the last %d scored calls is below the bar %.3f", arm, q.Value, q.N, *rb.MinFeedback)
			}
		}
		as.mu.Lock()
		pass, agree := as.pass.quality(), as.agree.quality()
		as.mu.Unlock()
		if reason == "" && rb.MinPassRate != nil && pass != nil && pass.N >= rb.MinObservations && pass.Value < *rb.MinPassRate {
			reason = fmt.Sprintf("arm %q: validator pass rate %.3f over the last %d answers is below the bar %.3f", arm, pass.Value, pass.N, *rb.MinPassRate)
		}
		if reason == "" && rb.MinAgreement != nil && agree != nil && agree.N >= rb.MinObservations && agree.Value < *rb.MinAgreement {
			reason = fmt.Sprintf("shadow %q: agreement with the primary %.3f over the last %d judged answers is below the bar %.3f", arm, agree.Value, agree.N, *rb.MinAgreement)
		}
	}
	if reason == "" {
		return nil
	}
	if cp.version == 1 {
		st.mu.Lock()
		logged := st.stuck
		st.stuck = true
		st.mu.Unlock()
		if logged {
			return nil
		}
		r.log.Error("route: quality below the bar but there is no earlier version to roll back to; fix the policy", "route", name, "reason", reason)
		return nil
	}
	v := cp.version
	rv, err := r.Rollback(ctx, name, 0, Change{Actor: AutoRollbackActor, Comment: reason, IfVersion: &v})
	if errors.Is(err, store.ErrConflict) {
		return nil // another replica rolled back, or someone changed the route: the next reload shows it
	}
	if err != nil {
		return fmt.Errorf("route %q: automatic rollback: %w", name, err)
	}
	r.log.Warn("route: rolled back automatically", "route", name, "from", v, "new_version", rv.Version, "reason", reason)
	return nil
}

// feedback is the mean latest-feedback score of the arm's most recent
// scored calls under the current version (escalated cascade answers are the
// teacher's, so they do not count against the candidate).
func (r *Router) feedback(ctx context.Context, cp *compiled, arm string) (*Quality, error) {
	yes := true
	md := map[string]string{"route": cp.name, "route.version": strconv.Itoa(cp.version), "route.arm": arm}
	for _, a := range cp.Arms {
		if a.Name == arm && a.EscalateTo != "" {
			md["route.escalated"] = "false"
		}
	}
	page, err := r.opts.Store.ListRecords(ctx, store.Query{Since: cp.since, Routes: []string{cp.name}, Metadata: md, HasFeedback: &yes, Limit: cp.Rollback.Window})
	if err != nil {
		return nil, err
	}
	sum, n := 0.0, 0
	for _, rec := range page.Records {
		if rec.Feedback != nil && rec.Feedback.Score != nil {
			sum += *rec.Feedback.Score
			n++
		}
	}
	if n == 0 {
		return nil, nil
	}
	return &Quality{Value: sum / float64(n), N: n}, nil
}
