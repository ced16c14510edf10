package decide

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestForMachine(t *testing.T) {
	for want, cases := range map[MachineAction][]Machine{
		EnsureDeprovisioned: {{Deleting: true, HasFinalizer: true}, {Deleting: true, HasFinalizer: true, OurProvider: true}},
		Ignore:              {{Deleting: true}, {Deleting: true, OurProvider: true}, {}, {HasFinalizer: true}},
		AddFinalizer:        {{OurProvider: true}},
		EnsureProvisioned:   {{OurProvider: true, HasFinalizer: true}},
	} {
		for _, m := range cases {
			require.Equal(t, want, ForMachine(m), "%+v", m)
		}
	}
}

func TestForRun(t *testing.T) {
	closed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	backoff := func(attempt int) time.Duration { return time.Duration(attempt) * time.Minute }
	failed := Latest{State: Closed, Mine: true, Generation: 2, Attempt: 2, CloseTime: closed}
	for name, tc := range map[string]struct {
		latest Latest
		want   Want
		now    time.Time
		action RunAction
	}{
		"no run starts the first attempt":      {Latest{}, Want{}, closed, RunAction{Verb: Start, Attempt: 1}},
		"an open run is reported":              {Latest{State: Open}, Want{}, closed, RunAction{Verb: Report}},
		"an open run of another Machine too":   {Latest{State: Open, Mine: false}, Want{}, closed, RunAction{Verb: Report}},
		"force reaches an open unforced run":   {Latest{State: Open}, Want{Force: true}, closed, RunAction{Verb: ForceOpen}},
		"a forced open run is reported":        {Latest{State: Open, Force: true}, Want{Force: true}, closed, RunAction{Verb: Report}},
		"a closed run of an earlier Machine":   {Latest{State: Completed}, Want{}, closed, RunAction{Verb: Start, Attempt: 1}},
		"a completed run is reported":          {Latest{State: Completed, Mine: true, Generation: 1}, Want{Generation: 2, CheckGeneration: true}, closed, RunAction{Verb: Report}},
		"a failed run of another generation":   {failed, Want{Generation: 3, CheckGeneration: true}, closed, RunAction{Verb: Start, Attempt: 1}},
		"generation ignored where not checked": {failed, Want{Generation: 3}, closed, RunAction{Verb: Wait, RetryAt: closed.Add(2 * time.Minute)}},
		"unknown generation is never outdated": {Latest{State: Closed, Mine: true, Attempt: 1, CloseTime: closed}, Want{Generation: 9, CheckGeneration: true}, closed, RunAction{Verb: Wait, RetryAt: closed.Add(time.Minute)}},
		"force restarts a failed unforced run": {failed, Want{Generation: 2, Force: true}, closed, RunAction{Verb: Start, Attempt: 1}},
		"a failed run waits out its backoff":   {failed, Want{Generation: 2, CheckGeneration: true}, closed.Add(time.Minute), RunAction{Verb: Wait, RetryAt: closed.Add(2 * time.Minute)}},
		"then the next attempt starts":         {failed, Want{Generation: 2, CheckGeneration: true}, closed.Add(2 * time.Minute), RunAction{Verb: Start, Attempt: 3}},
		"a failed CLI run counts as attempt 1": {Latest{State: Closed, Mine: true, CloseTime: closed}, Want{}, closed.Add(time.Hour), RunAction{Verb: Start, Attempt: 2}},
	} {
		t.Run(name, func(t *testing.T) {
			require.Equal(t, tc.action, ForRun(tc.latest, tc.want, backoff, tc.now))
		})
	}
}

func TestRequeue(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 10, 0, 0, time.UTC)
	lo, hi := time.Second, time.Minute
	for name, tc := range map[string]struct {
		state            State
		started, retryAt time.Time
		after, follow    time.Duration
	}{
		"open: as long as it has run":   {Open, now.Add(-10 * time.Second), time.Time{}, 10 * time.Second, 11 * time.Second},
		"open: at least lo":             {Open, now, time.Time{}, lo, 2 * lo},
		"open: at most hi":              {Open, now.Add(-time.Hour), time.Time{}, hi, hi + lo},
		"failed: when the retry is due": {Closed, time.Time{}, now.Add(30 * time.Second), 30 * time.Second, 0},
		"failed: a due retry after lo":  {Closed, time.Time{}, now.Add(-time.Second), lo, 0},
		"failed: no retry planned":      {Closed, time.Time{}, time.Time{}, hi, 0},
		"completed: no look":            {Completed, time.Time{}, time.Time{}, 0, 0},
		"not found: no look":            {NotFound, time.Time{}, time.Time{}, 0, 0},
	} {
		t.Run(name, func(t *testing.T) {
			after, follow := Requeue(tc.state, tc.started, tc.retryAt, now, lo, hi)
			require.Equal(t, tc.after, after)
			require.Equal(t, tc.follow, follow)
		})
	}
}
