package connection

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxTenantLen bounds a tenant id taken from a JWT claim.
const maxTenantLen = 256

// ValidTenant reports whether tenant can name a connection: non-empty,
// bounded, valid UTF-8 without control characters.
func ValidTenant(tenant string) bool {
	if tenant == "" || len(tenant) > maxTenantLen || !utf8.ValidString(tenant) {
		return false
	}
	return strings.IndexFunc(tenant, unicode.IsControl) < 0
}

// secretComponent is tenant as it appears in a secret name: always a
// digest of the tenant id, never the id itself. Were some ids used as they
// are, a tenant could pick an id that equals another tenant's digest and
// read that tenant's secrets; with every id hashed, two tenants share a name
// only if SHA-256 collides. The digest also keeps any id within what
// Secrets Manager allows in a name.
func secretComponent(tenant string) string {
	sum := sha256.Sum256([]byte(tenant))
	return "t-" + hex.EncodeToString(sum[:16])
}

// TokenSecretName names the secret that holds tenant's API access token.
func TokenSecretName(prefix, tenant string) string {
	return prefix + secretComponent(tenant) + "/buildkite-api-token"
}

// WebhookSecretName names the secret that signs tenant's webhooks.
func WebhookSecretName(prefix, tenant string) string {
	return prefix + secretComponent(tenant) + "/webhook-secret"
}
