package analysistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/loganalysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// Record is an analyzed job of tenant at the given time, with every field
// set, for store tests.
func Record(tenant, jobID string, at time.Time) analysis.Record {
	exit := 1
	return analysis.Record{
		Result: loganalysis.Result{
			Category: loganalysis.CategoryTest, Summary: "1 failing test(s): TestFoo",
			Excerpts:     []loganalysis.Excerpt{{StartLine: 3, EndLine: 4, Text: "--- FAIL: TestFoo\nFAIL"}},
			FailingTests: []loganalysis.FailingTest{{Name: "TestFoo", File: "foo_test.go", Line: 12}},
			Errors:       []loganalysis.ErrorLocation{},
			Section:      "Running tests", Command: "go test ./...", ExitStatus: &exit,
			Fingerprint: "abc123", Lines: 10, Bytes: 200,
		},
		ID: "job:" + jobID, TenantID: tenant, Org: "acme", Pipeline: "web", BuildNumber: 7, BuildID: "build-7",
		JobID: jobID, JobName: ":go: test", StepKey: "test", Branch: "main", Commit: "abcd",
		Links:      analysis.Links{Build: "https://buildkite.com/acme/web/builds/7", Job: "https://buildkite.com/acme/web/builds/7#" + jobID},
		State:      analysis.StateAnalyzed,
		Actions:    analysis.Actions{RetrySkipped: "a test failure"},
		Baseline:   &analysis.Baseline{BuildNumber: 6, JobID: "p"},
		AnalyzedAt: at.UTC(), DurationMS: 12, Requests: 3,
	}
}

// RunStore checks the behaviour every analysis.Store shares. newStore
// returns an empty store (or one with no data for the tenants it uses).
func RunStore(t *testing.T, newStore func(t *testing.T) analysis.Store) {
	ctx := context.Background()
	unique := func(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

	t.Run("create get update", func(t *testing.T) {
		s := newStore(t)
		tenant := unique("t")
		rec := Record(tenant, "j1", time.Now().Truncate(time.Millisecond))
		if _, err := s.GetAnalysis(ctx, tenant, rec.Key()); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get before create: %v, want ErrNotFound", err)
		}
		if err := s.CreateAnalysis(ctx, rec); err != nil {
			t.Fatalf("create: %v", err)
		}
		got, err := s.GetAnalysis(ctx, tenant, rec.Key())
		if err != nil {
			t.Fatalf("get: %v", err)
		}
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("round trip (-want +got):\n%s", diff)
		}
		again := rec
		again.Summary = "another"
		if err := s.CreateAnalysis(ctx, again); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("second create: %v, want ErrConflict", err)
		}
		rec.Reported = true
		rec.Actions.Annotated = &analysis.Annotated{At: rec.AnalyzedAt.Add(time.Second)}
		if err := s.UpdateAnalysis(ctx, rec); err != nil {
			t.Fatalf("update: %v", err)
		}
		got, _ = s.GetAnalysis(ctx, tenant, rec.Key())
		if diff := cmp.Diff(rec, got); diff != "" {
			t.Errorf("after update (-want +got):\n%s", diff)
		}
		if err := s.UpdateAnalysis(ctx, Record(tenant, "never", time.Now())); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("update of a missing analysis: %v, want ErrNotFound", err)
		}
	})

	t.Run("concurrent creates of one job", func(t *testing.T) {
		s := newStore(t)
		tenant := unique("t")
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := Record(tenant, "same", time.Now().Add(time.Duration(i)*time.Millisecond))
				switch err := s.CreateAnalysis(ctx, rec); {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, storage.ErrConflict):
					t.Errorf("create: %v", err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Errorf("%d creates won; want 1", won.Load())
		}
		recs, _, err := s.ListAnalyses(ctx, tenant, 100, "")
		if err != nil || len(recs) != 1 {
			t.Errorf("listed %d analyses (%v); want 1", len(recs), err)
		}
	})

	t.Run("list newest first in pages", func(t *testing.T) {
		s := newStore(t)
		tenant, other := unique("t"), unique("o")
		base := time.Now().Truncate(time.Second)
		var want []string
		for i := range 5 {
			id := fmt.Sprintf("j%d", i)
			if err := s.CreateAnalysis(ctx, Record(tenant, id, base.Add(time.Duration(i)*time.Second))); err != nil {
				t.Fatal(err)
			}
			want = append([]string{id}, want...)
		}
		if err := s.CreateAnalysis(ctx, Record(other, "x", base)); err != nil {
			t.Fatal(err)
		}
		var got []string
		cursor := ""
		for page := 0; ; page++ {
			recs, next, err := s.ListAnalyses(ctx, tenant, 2, cursor)
			if err != nil {
				t.Fatalf("page %d: %v", page, err)
			}
			for _, r := range recs {
				got = append(got, r.JobID)
				if r.TenantID != tenant {
					t.Errorf("listed an analysis of tenant %q", r.TenantID)
				}
			}
			if next == "" {
				break
			}
			if page > 5 {
				t.Fatalf("pages do not end")
			}
			cursor = next
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("listed (-want +got):\n%s", diff)
		}
		// A cursor is good for the tenant it was given to, as given: not
		// garbage, not base64 of something else, not edited, not another
		// tenant's.
		_, first, err := s.ListAnalyses(ctx, tenant, 1, "")
		if err != nil || first == "" {
			t.Fatalf("first page: next %q, %v", first, err)
		}
		if err := s.CreateAnalysis(ctx, Record(other, "y", base.Add(time.Second))); err != nil {
			t.Fatal(err)
		}
		_, otherCursor, err := s.ListAnalyses(ctx, other, 1, "")
		if err != nil || otherCursor == "" {
			t.Fatalf("other tenant's first page: next %q, %v", otherCursor, err)
		}
		edited := []byte(first)
		edited[len(edited)/2] ^= 1
		for _, bad := range []string{"not-a-cursor!", "YWJj", "YQ", string(edited), first + "A", otherCursor} {
			recs, _, err := s.ListAnalyses(ctx, tenant, 2, bad)
			if !errors.Is(err, analysis.ErrBadCursor) {
				t.Errorf("cursor %q: %d analyses, %v; want ErrBadCursor", bad, len(recs), err)
			}
		}
		recs, _, err := s.ListAnalyses(ctx, other, 5, first)
		if !errors.Is(err, analysis.ErrBadCursor) {
			t.Errorf("another tenant's cursor: %d analyses, %v; want ErrBadCursor", len(recs), err)
		}
		recs, next, err := s.ListAnalyses(ctx, unique("none"), 20, "")
		if err != nil || len(recs) != 0 || next != "" {
			t.Errorf("empty tenant: %d, %q, %v", len(recs), next, err)
		}
	})

	t.Run("build report versions", func(t *testing.T) {
		s := newStore(t)
		tenant := unique("t")
		if _, err := s.GetBuildReport(ctx, tenant, "b1"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("get before put: %v", err)
		}
		rep := analysis.BuildReport{TenantID: tenant, Org: "acme", Pipeline: "web", BuildNumber: 7, BuildID: "b1",
			Jobs: []analysis.ReportJob{{JobID: "j1", Name: "test", Fingerprint: "f", FailingTests: []string{"TestFoo"}}}}
		var won atomic.Int32
		var wg sync.WaitGroup
		for range 6 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				switch err := s.PutBuildReport(ctx, rep); {
				case err == nil:
					won.Add(1)
				case !errors.Is(err, storage.ErrConflict):
					t.Errorf("put: %v", err)
				}
			}()
		}
		wg.Wait()
		if won.Load() != 1 {
			t.Fatalf("%d first puts won; want 1", won.Load())
		}
		got, err := s.GetBuildReport(ctx, tenant, "b1")
		if err != nil {
			t.Fatal(err)
		}
		want := rep
		want.Version = 1
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("report (-want +got):\n%s", diff)
		}
		if err := s.PutBuildReport(ctx, got); err != nil {
			t.Errorf("put at version 1: %v", err)
		}
		if err := s.PutBuildReport(ctx, got); !errors.Is(err, storage.ErrConflict) {
			t.Errorf("stale put: %v, want ErrConflict", err)
		}
	})

	t.Run("reconcile marks and passed tests", func(t *testing.T) {
		s := newStore(t)
		tenant := unique("t")
		if _, err := s.ReconcileMark(ctx, tenant, "acme"); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("mark before set: %v", err)
		}
		at := time.Date(2026, 7, 20, 15, 0, 0, 123456789, time.UTC)
		if err := s.SetReconcileMark(ctx, tenant, "acme", at); err != nil {
			t.Fatal(err)
		}
		if got, err := s.ReconcileMark(ctx, tenant, "acme"); err != nil || !got.Equal(at) {
			t.Errorf("mark %v (%v), want %v", got, err, at)
		}
		if err := s.AddPassedTests(ctx, tenant, "web", "c1", []string{"A", "B"}); err != nil {
			t.Fatal(err)
		}
		if err := s.AddPassedTests(ctx, tenant, "web", "c1", []string{"B", "C"}); err != nil {
			t.Fatal(err)
		}
		got, err := s.PassedTests(ctx, tenant, "web", "c1")
		slices.Sort(got)
		if diff := cmp.Diff([]string{"A", "B", "C"}, got); err != nil || diff != "" {
			t.Errorf("passed tests (%v) (-want +got):\n%s", err, diff)
		}
		if got, err := s.PassedTests(ctx, tenant, "web", "c2"); err != nil || len(got) != 0 {
			t.Errorf("another commit: %v %v", got, err)
		}
	})
}

// RunBudget checks the behaviour every analysis.Budget shares.
func RunBudget(t *testing.T, b analysis.Budget) {
	ctx := context.Background()
	key := fmt.Sprintf("k%d", time.Now().UnixNano())
	window := time.Date(2026, 7, 20, 15, 1, 0, 0, time.UTC)
	var got []bool
	for range 4 {
		ok, err := b.TakeRequest(ctx, key, window, 3)
		if err != nil {
			t.Fatalf("take: %v", err)
		}
		got = append(got, ok)
	}
	if diff := cmp.Diff([]bool{true, true, true, false}, got); diff != "" {
		t.Errorf("takes in one minute (-want +got):\n%s", diff)
	}
	if ok, err := b.TakeRequest(ctx, key, window.Add(time.Minute), 3); err != nil || !ok {
		t.Errorf("next minute: %v %v", ok, err)
	}
	if ok, err := b.TakeRequest(ctx, key+"-other", window, 3); err != nil || !ok {
		t.Errorf("another token: %v %v", ok, err)
	}
	// The count of the minute comes back with each request taken, so a
	// worker can tell a nearly spent minute (and skip what it can do
	// without).
	cb, ok := b.(interface {
		TakeRequestCount(ctx context.Context, key string, window time.Time, limit int) (int, bool, error)
	})
	if !ok {
		t.Fatalf("%T does not count: no TakeRequestCount", b)
	}
	var counts []int
	for range 3 {
		n, ok, err := cb.TakeRequestCount(ctx, key+"-count", window, 2)
		if err != nil {
			t.Fatalf("take with count: %v", err)
		}
		if !ok {
			n = -n
		}
		counts = append(counts, n)
	}
	if diff := cmp.Diff([]int{1, 2, -2}, counts); diff != "" {
		t.Errorf("counts (refused as minus the limit) (-want +got):\n%s", diff)
	}
}
