package localstore

import (
	"context"
	"testing"
	"time"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/analysis/analysistest"
)

func openTest(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestAnalysisStoreContract(t *testing.T) {
	analysistest.RunStore(t, func(t *testing.T) analysis.Store { return openTest(t) })
}

func TestBudgetContract(t *testing.T) {
	analysistest.RunBudget(t, openTest(t))
}

func TestAnalysesExpire(t *testing.T) {
	s := openTest(t)
	ctx := context.Background()
	old := analysistest.Record("t", "old", time.Now().Add(-analysis.Retention-time.Hour))
	if err := s.CreateAnalysis(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAnalysis(ctx, analysistest.Record("t", "new", time.Now())); err != nil {
		t.Fatal(err)
	}
	recs, _, err := s.ListAnalyses(ctx, "t", 10, "")
	if err != nil || len(recs) != 1 || recs[0].JobID != "new" {
		t.Errorf("after expiry: %d analyses (%v); want only the new one", len(recs), err)
	}
	// Its key is free again.
	if err := s.CreateAnalysis(ctx, analysistest.Record("t", "old", time.Now())); err != nil {
		t.Errorf("create after expiry: %v", err)
	}
}
