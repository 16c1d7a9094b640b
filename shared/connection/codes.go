package connection

// Code names a failure of the settings API; each maps to one HTTP status.
type Code string

// The error codes of the settings API.
const (
	CodeMalformedRequest     Code = "malformed_request"
	CodeWrongTokenType       Code = "wrong_token_type"
	CodeInvalidToken         Code = "invalid_token"
	CodeExpiredToken         Code = "expired_token"
	CodeMissingScopes        Code = "missing_scopes"
	CodeNoOrganizationAccess Code = "no_organization_access"
	CodeRateLimited          Code = "buildkite_rate_limited"
	CodeUnreachable          Code = "buildkite_unreachable"
	CodeStorageUnavailable   Code = "storage_unavailable"
	CodeUnauthorized         Code = "unauthorized"
	CodeNotConnected         Code = "not_connected"
	CodeConflict             Code = "conflict"

	// Refusals of a request before it reaches a route.
	CodeNotFound             Code = "not_found"
	CodeMethodNotAllowed     Code = "method_not_allowed"
	CodeUnsupportedMediaType Code = "unsupported_media_type"
	CodeForbidden            Code = "forbidden"
)
