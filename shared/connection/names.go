package connection

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
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

// secretSafe matches what Secrets Manager allows in a name, less the slash
// we use as a separator.
var secretSafe = regexp.MustCompile(`^[A-Za-z0-9_+=.@-]{1,64}$`)

// secretComponent is tenant as it appears in a secret name: as is when it
// only holds characters Secrets Manager allows, otherwise a digest.
func secretComponent(tenant string) string {
	if secretSafe.MatchString(tenant) {
		return tenant
	}
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
