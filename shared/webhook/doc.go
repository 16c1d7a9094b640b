// Package webhook authenticates Buildkite webhook deliveries and reads their
// payloads. Everything here works on plain values (header strings, the raw
// body, a clock reading), so the same code serves the Lambda function URL
// and `kitefix serve`.
//
// Buildkite proves a delivery in one of two ways: an X-Buildkite-Signature
// header, "timestamp=<unix seconds>,signature=<hex HMAC-SHA256 of
// "<timestamp>.<raw body>">", or the plain secret in X-Buildkite-Token.
// Signatures are checked in constant time and only within MaxSkew of the
// clock, so a captured delivery cannot be replayed later; tokens are
// compared in constant time too.
//
// Payloads are decoded two ways: Decode gives the typed Event (ping, build.*
// and job.* with the field names Buildkite documents), and Summarize reads
// just the fields Decide needs in one pass without building the event, which
// keeps the per-delivery work small.
package webhook
