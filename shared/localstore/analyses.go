package localstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/storage"
)

// Buckets of the analyses. Keys start with the tenant and a NUL byte.
var (
	bucketAnalysisKeys = []byte("analysis_keys")   // tenant, key → list key
	bucketAnalyses     = []byte("analyses")        // tenant, analyzed_at, key → analysis JSON
	bucketBuildReports = []byte("build_reports")   // tenant, build id → report JSON
	bucketReconcile    = []byte("reconcile_marks") // tenant, org → RFC 3339 time
	bucketPassedTests  = []byte("passed_tests")    // tenant, pipeline, commit → JSON list
)

const analysisTimeForm = "20060102T150405.000000000Z"

var _ analysis.Store = (*Store)(nil)

func tkey(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// localAnalysis is an analysis as stored.
type localAnalysis struct {
	analysis.Record
	Tenant   string `json:"tenant_id"`
	Reported bool   `json:"reported"`
}

func listKey(rec analysis.Record) []byte {
	return tkey(rec.TenantID, rec.AnalyzedAt.UTC().Format(analysisTimeForm), rec.Key())
}

func (s *Store) update(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w: %w", op, storage.ErrUnavailable, err)
	}
	if err := s.db.Update(fn); err != nil {
		return wrap(op, err)
	}
	return nil
}

func (s *Store) view(ctx context.Context, op string, fn func(tx *bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w: %w", op, storage.ErrUnavailable, err)
	}
	if err := s.db.View(fn); err != nil {
		return wrap(op, err)
	}
	return nil
}

func bucket(tx *bolt.Tx, name []byte) (*bolt.Bucket, error) {
	return tx.CreateBucketIfNotExists(name)
}

// getValue returns the value at key in the bucket name, nil when the
// bucket or the key is missing. It is valid for the life of tx.
func getValue(tx *bolt.Tx, name, key []byte) []byte {
	b := tx.Bucket(name)
	if b == nil {
		return nil
	}
	return b.Get(key)
}

// CreateAnalysis stores rec unless the tenant has an analysis of its key.
// It also drops the tenant's analyses older than analysis.Retention.
func (s *Store) CreateAnalysis(ctx context.Context, rec analysis.Record) error {
	if rec.TenantID == "" || rec.AnalyzedAt.IsZero() {
		return errors.New("create analysis: empty tenant or analysis time")
	}
	v, err := json.Marshal(localAnalysis{Record: rec, Tenant: rec.TenantID, Reported: rec.Reported})
	if err != nil {
		return fmt.Errorf("create analysis: encode: %w", err)
	}
	return s.update(ctx, "create analysis", func(tx *bolt.Tx) error {
		keys, err := bucket(tx, bucketAnalysisKeys)
		if err != nil {
			return err
		}
		list, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		k := tkey(rec.TenantID, rec.Key())
		if keys.Get(k) != nil {
			return storage.ErrConflict
		}
		lk := listKey(rec)
		if err := keys.Put(k, lk); err != nil {
			return err
		}
		if err := list.Put(lk, v); err != nil {
			return err
		}
		return expireAnalyses(keys, list, rec.TenantID, time.Now().Add(-analysis.Retention))
	})
}

// expireAnalyses deletes the tenant's analyses analyzed before cutoff.
func expireAnalyses(keys, list *bolt.Bucket, tenant string, cutoff time.Time) error {
	prefix := tkey(tenant, "")
	limit := tkey(tenant, cutoff.UTC().Format(analysisTimeForm))
	var old [][]byte
	c := list.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, limit) < 0; k, _ = c.Next() {
		old = append(old, slices.Clone(k))
	}
	for _, k := range old {
		parts := bytes.SplitN(k, []byte{0}, 3)
		if len(parts) == 3 {
			if err := keys.Delete(tkey(tenant, string(parts[2]))); err != nil {
				return err
			}
		}
		if err := list.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// UpdateAnalysis replaces a stored analysis.
func (s *Store) UpdateAnalysis(ctx context.Context, rec analysis.Record) error {
	v, err := json.Marshal(localAnalysis{Record: rec, Tenant: rec.TenantID, Reported: rec.Reported})
	if err != nil {
		return fmt.Errorf("update analysis: encode: %w", err)
	}
	return s.update(ctx, "update analysis", func(tx *bolt.Tx) error {
		list, err := bucket(tx, bucketAnalyses)
		if err != nil {
			return err
		}
		lk := listKey(rec)
		if list.Get(lk) == nil {
			return storage.ErrNotFound
		}
		return list.Put(lk, v)
	})
}

// GetAnalysis returns the tenant's analysis of key.
func (s *Store) GetAnalysis(ctx context.Context, tenant, key string) (analysis.Record, error) {
	var rec analysis.Record
	err := s.view(ctx, "get analysis", func(tx *bolt.Tx) error {
		keys, list := tx.Bucket(bucketAnalysisKeys), tx.Bucket(bucketAnalyses)
		if keys == nil || list == nil {
			return storage.ErrNotFound
		}
		lk := keys.Get(tkey(tenant, key))
		if lk == nil {
			return storage.ErrNotFound
		}
		v := list.Get(lk)
		if v == nil {
			return storage.ErrNotFound
		}
		var err error
		rec, err = decodeLocalAnalysis(v)
		return err
	})
	return rec, err
}

func decodeLocalAnalysis(v []byte) (analysis.Record, error) {
	var la localAnalysis
	if err := json.Unmarshal(v, &la); err != nil {
		return analysis.Record{}, fmt.Errorf("decode analysis: %w", err)
	}
	rec := la.Record
	rec.TenantID, rec.Reported = la.Tenant, la.Reported
	return rec, nil
}

// ListAnalyses returns a page of the tenant's analyses, newest first.
func (s *Store) ListAnalyses(ctx context.Context, tenant string, limit int, cursor string) ([]analysis.Record, string, error) {
	limit = max(limit, 1)
	prefix := tkey(tenant, "")
	var from []byte
	if cursor != "" {
		b, err := analysis.DecodeCursor(tenant, cursor)
		if err != nil {
			return nil, "", fmt.Errorf("list analyses: %w", err)
		}
		from = append(slices.Clone(prefix), b...)
	}
	recs := []analysis.Record{}
	next := ""
	err := s.view(ctx, "list analyses", func(tx *bolt.Tx) error {
		list := tx.Bucket(bucketAnalyses)
		if list == nil {
			return nil
		}
		c := list.Cursor()
		var k, v []byte
		if from == nil {
			// The last key of the tenant: just before the next tenant.
			end := append(tkey(tenant), 1)
			if k, _ = c.Seek(end); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		} else {
			if k, _ = c.Seek(from); k == nil {
				k, v = c.Last()
			} else {
				k, v = c.Prev()
			}
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if len(recs) == limit {
				last := listKey(recs[limit-1])
				next = analysis.EncodeCursor(tenant, last[len(prefix):])
				return nil
			}
			rec, err := decodeLocalAnalysis(v)
			if err != nil {
				return err
			}
			recs = append(recs, rec)
		}
		return nil
	})
	if err != nil {
		return nil, "", err
	}
	return recs, next, nil
}

// storedReport is a build report as stored.
type storedReport struct {
	Report  analysis.BuildReport `json:"report"`
	Version int64                `json:"version"`
}

// GetBuildReport returns the report of a build.
func (s *Store) GetBuildReport(ctx context.Context, tenant, buildID string) (analysis.BuildReport, error) {
	var rep analysis.BuildReport
	err := s.view(ctx, "get build report", func(tx *bolt.Tx) error {
		v := getValue(tx, bucketBuildReports, tkey(tenant, buildID))
		if v == nil {
			return storage.ErrNotFound
		}
		var sr storedReport
		if err := json.Unmarshal(v, &sr); err != nil {
			return fmt.Errorf("decode build report: %w", err)
		}
		rep = sr.Report
		rep.Version = sr.Version
		return nil
	})
	return rep, err
}

// PutBuildReport writes rep if the stored version is rep.Version.
func (s *Store) PutBuildReport(ctx context.Context, rep analysis.BuildReport) error {
	v, err := json.Marshal(storedReport{Report: rep, Version: rep.Version + 1})
	if err != nil {
		return fmt.Errorf("put build report: encode: %w", err)
	}
	return s.update(ctx, "put build report", func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketBuildReports)
		if err != nil {
			return err
		}
		k := tkey(rep.TenantID, rep.BuildID)
		var cur int64
		if old := b.Get(k); old != nil {
			var sr storedReport
			if err := json.Unmarshal(old, &sr); err != nil {
				return fmt.Errorf("decode build report: %w", err)
			}
			cur = sr.Version
		}
		if cur != rep.Version {
			return storage.ErrConflict
		}
		return b.Put(k, v)
	})
}

// ReconcileMark returns when the organization's last pass started.
func (s *Store) ReconcileMark(ctx context.Context, tenant, org string) (time.Time, error) {
	var at time.Time
	err := s.view(ctx, "get reconcile mark", func(tx *bolt.Tx) error {
		v := getValue(tx, bucketReconcile, tkey(tenant, org))
		if v == nil {
			return storage.ErrNotFound
		}
		var err error
		at, err = time.Parse(time.RFC3339Nano, string(v))
		return err
	})
	return at, err
}

// SetReconcileMark records when a pass started.
func (s *Store) SetReconcileMark(ctx context.Context, tenant, org string, at time.Time) error {
	return s.update(ctx, "put reconcile mark", func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketReconcile)
		if err != nil {
			return err
		}
		return b.Put(tkey(tenant, org), []byte(at.UTC().Format(time.RFC3339Nano)))
	})
}

// AddPassedTests adds tests to the commit's set of tests seen passing.
func (s *Store) AddPassedTests(ctx context.Context, tenant, pipeline, commit string, tests []string) error {
	return s.update(ctx, "add passed tests", func(tx *bolt.Tx) error {
		b, err := bucket(tx, bucketPassedTests)
		if err != nil {
			return err
		}
		k := tkey(tenant, pipeline, commit)
		var cur []string
		if v := b.Get(k); v != nil {
			if err := json.Unmarshal(v, &cur); err != nil {
				return fmt.Errorf("decode passed tests: %w", err)
			}
		}
		for _, t := range tests {
			if !slices.Contains(cur, t) {
				cur = append(cur, t)
			}
		}
		v, err := json.Marshal(cur)
		if err != nil {
			return err
		}
		return b.Put(k, v)
	})
}

// PassedTests returns the tests seen passing on the commit.
func (s *Store) PassedTests(ctx context.Context, tenant, pipeline, commit string) ([]string, error) {
	var tests []string
	err := s.view(ctx, "get passed tests", func(tx *bolt.Tx) error {
		if v := getValue(tx, bucketPassedTests, tkey(tenant, pipeline, commit)); v != nil {
			return json.Unmarshal(v, &tests)
		}
		return nil
	})
	return tests, err
}

// Tenants lists the tenants that have a status record.
func (s *Store) Tenants(ctx context.Context) ([]string, error) {
	var tenants []string
	err := s.view(ctx, "list tenants", func(tx *bolt.Tx) error {
		return tx.Bucket(bucketConnections).ForEach(func(k, _ []byte) error {
			tenants = append(tenants, string(k))
			return nil
		})
	})
	return tenants, err
}
