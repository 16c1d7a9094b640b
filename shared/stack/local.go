package stack

import (
	"log/slog"
	"net/http"

	"github.com/kitefix/kitefix/shared/analysis"
	"github.com/kitefix/kitefix/shared/config"
	"github.com/kitefix/kitefix/shared/connection"
	"github.com/kitefix/kitefix/shared/ingest"
	"github.com/kitefix/kitefix/shared/localstore"
	"github.com/kitefix/kitefix/shared/settingsapi"
)

// LocalTenant is the one tenant of `kitefix serve`.
const LocalTenant = "local"

// Local is the whole stack in one process on embedded storage.
type Local struct {
	Handler http.Handler
	store   *localstore.Store
	// worker analyzes queued failed jobs; pool runs it over the embedded
	// queue; queue sends to that queue and wakes the pool.
	worker *analysis.Worker
	pool   *analysis.Pool
	queue  wakingQueue
}

// OpenLocal opens the embedded store in dataDir and builds the local
// handler: the settings API for tenant "local", the webhook path, and the
// settings page from page.
func OpenLocal(dataDir string, cfg config.Config, log *slog.Logger, page http.Handler) (*Local, error) {
	store, err := localstore.Open(dataDir)
	if err != nil {
		return nil, err // it says "open local store" already
	}
	svc := connection.NewService(connection.Config{
		Records:        store,
		Secrets:        store,
		Buildkite:      BuildkiteClients(cfg, log),
		SecretPrefix:   cfg.SecretPrefix,
		WebhookBaseURL: cfg.WebhookBaseURL,
		Logger:         log,
	})
	api := settingsapi.New(svc, log)
	api.ServeAnalyses(store)
	worker, pool, queue := localWorker(store, svc, cfg, log)
	mux := http.NewServeMux()
	mux.Handle("/v1/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.ServeHTTP(w, r.WithContext(settingsapi.WithTenant(r.Context(), LocalTenant)))
	}))
	hooks := ingest.New(ingest.Config{
		Routes:       store,
		Secrets:      store,
		Deliveries:   store,
		Queue:        queue,
		SecretPrefix: cfg.SecretPrefix,
		Logger:       log,
	})
	mux.Handle("/hooks/{id}", hooks)
	// Any other path under /hooks/ is a mistyped webhook URL: the webhook
	// handler answers it (404, in its JSON shape), not the page.
	mux.Handle("/hooks/", hooks)
	if page != nil {
		mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				w.Header().Set("Allow", "GET, HEAD")
				http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
				return
			}
			page.ServeHTTP(w, r)
		}))
	}
	return &Local{Handler: mux, store: store, worker: worker, pool: pool, queue: queue}, nil
}

// Close closes the embedded store.
func (l *Local) Close() error { return l.store.Close() }
