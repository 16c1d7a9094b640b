package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
	"time"
)

// The headers Buildkite sends with every delivery. Lookups must ignore case:
// function URLs lower-case header names.
const (
	EventHeader     = "X-Buildkite-Event"
	SignatureHeader = "X-Buildkite-Signature"
	TokenHeader     = "X-Buildkite-Token"
)

// MaxSkew is how far a signature's timestamp may be from the clock, in
// either direction. Buildkite signs when it sends, so a genuine delivery is
// seconds old; five minutes absorbs clock drift and slow networks while a
// captured delivery stops verifying soon after.
const MaxSkew = 5 * time.Minute

// maxHeaderLen bounds the signature header we parse. A real one is about
// 100 bytes.
const maxHeaderLen = 512

// The ways a delivery fails to authenticate. Callers log which one it was
// and answer every one the same way.
var (
	ErrNoCredentials     = errors.New("no signature or token header")
	ErrMalformed         = errors.New("malformed signature header")
	ErrStale             = errors.New("signature timestamp outside the allowed window")
	ErrSignatureMismatch = errors.New("signature does not match")
	ErrTokenMismatch     = errors.New("token does not match")
	ErrNoSecret          = errors.New("no secret to verify with")
)

// Signature is a parsed X-Buildkite-Signature header.
type Signature struct {
	// Timestamp is the signing time as sent: decimal digits, part of the
	// signed message.
	Timestamp string
	// Unix is Timestamp as a number.
	Unix int64
	// MAC is the decoded HMAC-SHA256.
	MAC [sha256.Size]byte
}

// ParseSignature reads "timestamp=<unix>,signature=<hex>". Parts may come in
// any order with spaces around them; unknown parts are ignored so a future
// addition does not break verification; a repeated, missing or malformed
// part is an error wrapping ErrMalformed.
func ParseSignature(header string) (Signature, error) {
	var sig Signature
	if len(header) > maxHeaderLen {
		return sig, fmt.Errorf("%w: %d bytes", ErrMalformed, len(header))
	}
	var haveTS, haveMAC bool
	for rest := header; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			if strings.TrimSpace(part) == "" {
				continue
			}
			return Signature{}, fmt.Errorf("%w: a part without '='", ErrMalformed)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch k {
		case "timestamp":
			if haveTS {
				return Signature{}, fmt.Errorf("%w: timestamp given twice", ErrMalformed)
			}
			n, ok := parseUnix(v)
			if !ok {
				return Signature{}, fmt.Errorf("%w: timestamp is not a number of seconds", ErrMalformed)
			}
			sig.Timestamp, sig.Unix, haveTS = v, n, true
		case "signature":
			if haveMAC {
				return Signature{}, fmt.Errorf("%w: signature given twice", ErrMalformed)
			}
			if !decodeHex(sig.MAC[:], v) {
				return Signature{}, fmt.Errorf("%w: signature is not %d hex digits", ErrMalformed, 2*sha256.Size)
			}
			haveMAC = true
		}
	}
	if !haveTS || !haveMAC {
		return Signature{}, fmt.Errorf("%w: want timestamp and signature", ErrMalformed)
	}
	return sig, nil
}

// maxUnixDigits keeps a parsed timestamp far from int64 overflow.
const maxUnixDigits = 12

func parseUnix(s string) (int64, bool) {
	if s == "" || len(s) > maxUnixDigits {
		return 0, false
	}
	var n int64
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// decodeHex fills dst from exactly 2*len(dst) hex digits of s.
func decodeHex(dst []byte, s string) bool {
	if len(s) != 2*len(dst) {
		return false
	}
	for i := range dst {
		hi, ok1 := fromHex(s[2*i])
		lo, ok2 := fromHex(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func fromHex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// Sign returns the X-Buildkite-Signature header Buildkite would send for
// body signed with secret at t. Tests and tools use it to make deliveries.
func Sign(secret string, t time.Time, body []byte) string {
	ts := fmt.Sprint(t.Unix())
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return fmt.Sprintf("timestamp=%s,signature=%x", ts, mac.Sum(nil))
}

// ValidSignature checks header against body with each of secrets and
// reports nil when one of them signed it within MaxSkew of now. It never
// says which secret matched nor how close a wrong signature came.
func ValidSignature(header string, body []byte, secrets []string, now time.Time) error {
	sig, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if d := now.Sub(time.Unix(sig.Unix, 0)); d > MaxSkew || d < -MaxSkew {
		return fmt.Errorf("%w: %s off", ErrStale, d.Round(time.Second))
	}
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	var sum [sha256.Size]byte
	matched := false
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(sig.Timestamp))
		mac.Write([]byte{'.'})
		mac.Write(body)
		// Every secret is tried, so the time taken does not say which one
		// matched.
		if hmac.Equal(mac.Sum(sum[:0]), sig.MAC[:]) {
			matched = true
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	return nil
}

// ValidToken reports nil when token equals one of secrets. Both sides are
// hashed first, so the comparison takes the same time whatever the lengths.
func ValidToken(token string, secrets []string) error {
	if len(secrets) == 0 {
		return ErrNoSecret
	}
	got := sha256.Sum256([]byte(token))
	ok := 0
	for _, secret := range secrets {
		if secret == "" {
			continue
		}
		want := sha256.Sum256([]byte(secret))
		ok |= subtle.ConstantTimeCompare(got[:], want[:])
	}
	if ok != 1 {
		return ErrTokenMismatch
	}
	return nil
}

// Verify authenticates a delivery from its two credential headers (either
// may be empty). A signature, when present, is the only thing checked: a
// token beside it does not rescue a bad signature.
func Verify(signature, token string, body []byte, secrets []string, now time.Time) error {
	switch {
	case signature != "":
		return ValidSignature(signature, body, secrets, now)
	case token != "":
		return ValidToken(token, secrets)
	}
	return ErrNoCredentials
}
