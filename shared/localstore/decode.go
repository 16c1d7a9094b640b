package localstore

import (
	"encoding/json"
	"fmt"

	"github.com/kitefix/kitefix/shared/connection"
)

// decodeRecord reads tenant's stored record v. A record that does not
// decode, or decodes to something no write stores (another tenant's, no
// version, an unknown state, a webhook without its id), is damaged: an
// error wrapping ErrDamaged, never storage.ErrNotFound, so that no caller
// takes it for "no record yet" and writes over what is there.
func decodeRecord(tenant string, v []byte) (connection.Record, error) {
	var sr storedRecord
	if err := json.Unmarshal(v, &sr); err != nil {
		return connection.Record{}, damagedRecord(tenant, fmt.Sprintf("does not decode: %v", err))
	}
	switch sr.Record.State {
	case connection.StateNotConnected, connection.StateConnected, connection.StateFailed, connection.StateDisconnected:
	default:
		return connection.Record{}, damagedRecord(tenant, fmt.Sprintf("has an unknown state %q", sr.Record.State))
	}
	switch {
	case sr.Tenant != tenant:
		return connection.Record{}, damagedRecord(tenant, "names another tenant")
	case sr.Version < 1:
		return connection.Record{}, damagedRecord(tenant, fmt.Sprintf("has version %d", sr.Version))
	case sr.Record.Webhook != nil && sr.WebhookID == "":
		return connection.Record{}, damagedRecord(tenant, "has a webhook without its id")
	}
	rec := sr.Record
	rec.Tenant, rec.Version, rec.UpdatedAt = sr.Tenant, sr.Version, sr.UpdatedAt
	if rec.Webhook != nil {
		rec.Webhook.ID = sr.WebhookID
	}
	return rec, nil
}

func damagedRecord(tenant, problem string) error {
	return fmt.Errorf("stored record of tenant %q %s: %w", tenant, problem, ErrDamaged)
}
