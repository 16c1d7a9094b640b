package webhook

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// The published test vector: a ping body from go-buildkite's tests, signed
// with this secret at this time.
const (
	vectorSecret    = "29b1ff5779c76bd48ba6705eb99ff970"
	vectorSignature = "timestamp=1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c"
	vectorUnix      = 1642080837
)

func vectorBody(t testing.TB) []byte {
	t.Helper()
	// testdata/ping.json is indented; the signed body is its compact form.
	b, err := os.ReadFile("testdata/ping.json")
	if err != nil {
		t.Fatal(err)
	}
	return compact(t, b)
}

func TestValidSignature(t *testing.T) {
	t.Parallel()
	body := vectorBody(t)
	signedAt := time.Unix(vectorUnix, 0)
	tampered := []byte(strings.Replace(string(body), "ACME Man", "ACME Mam", 1))
	fresh := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets []string
		now     time.Time
		want    error
	}{
		{"published vector", vectorSignature, body, []string{vectorSecret}, signedAt, nil},
		{"vector, 4m59s later", vectorSignature, body, []string{vectorSecret}, signedAt.Add(MaxSkew - time.Second), nil},
		{"vector, exactly 5m later", vectorSignature, body, []string{vectorSecret}, signedAt.Add(MaxSkew), nil},
		{"previous secret in grace", vectorSignature, body, []string{"new-secret", vectorSecret}, signedAt, nil},
		{"spaces and order", " signature = 582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c , timestamp=1642080837 ", body, []string{vectorSecret}, signedAt, nil},
		{"upper-case hex", "timestamp=1642080837,signature=582D496AC2D869DD97A3101C4CDA346288C49A742592DAF582EC64C86449F79C", body, []string{vectorSecret}, signedAt, nil},
		{"unknown part ignored", "v2=abc," + vectorSignature, body, []string{vectorSecret}, signedAt, nil},
		{"tampered body", vectorSignature, tampered, []string{vectorSecret}, signedAt, ErrSignatureMismatch},
		{"wrong secret", vectorSignature, body, []string{"29b1ff5779c76bd48ba6705eb99ff971"}, signedAt, ErrSignatureMismatch},
		{"no secrets", vectorSignature, body, nil, signedAt, ErrNoSecret},
		{"stale: vector now", vectorSignature, body, []string{vectorSecret}, fresh, ErrStale},
		{"stale: 5m1s old", vectorSignature, body, []string{vectorSecret}, signedAt.Add(MaxSkew + time.Second), ErrStale},
		{"future: 5m1s ahead", vectorSignature, body, []string{vectorSecret}, signedAt.Add(-MaxSkew - time.Second), ErrStale},
		{"future, re-signed", Sign(vectorSecret, fresh.Add(6*time.Minute), body), body, []string{vectorSecret}, fresh, ErrStale},
		{"fresh, re-signed", Sign(vectorSecret, fresh.Add(-time.Minute), body), body, []string{vectorSecret}, fresh, nil},
		{"signature changed", strings.Replace(vectorSignature, "582d", "582e", 1), body, []string{vectorSecret}, signedAt, ErrSignatureMismatch},
		{"timestamp changed", strings.Replace(vectorSignature, "1642080837", "1642080838", 1), body, []string{vectorSecret}, signedAt, ErrSignatureMismatch},
		{"not hex", "timestamp=1642080837,signature=yo", body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"short signature", "timestamp=1642080837,signature=582d", body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"no timestamp", "signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c", body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"negative timestamp", "timestamp=-1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c", body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"timestamp twice", "timestamp=1642080837," + vectorSignature, body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"invalid", "invalid", body, []string{vectorSecret}, signedAt, ErrMalformed},
		{"huge timestamp", "timestamp=99999999999999999999,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c", body, []string{vectorSecret}, signedAt, ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidSignature(tt.header, tt.body, tt.secrets, tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("ValidSignature = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), vectorSecret) {
				t.Errorf("the error names the secret")
			}
		})
	}
}

func TestSignMatchesTheVector(t *testing.T) {
	t.Parallel()
	if got := Sign(vectorSecret, time.Unix(vectorUnix, 0), vectorBody(t)); got != vectorSignature {
		t.Errorf("Sign = %q, want %q", got, vectorSignature)
	}
}

func TestVerify(t *testing.T) {
	t.Parallel()
	body := vectorBody(t)
	now := time.Unix(vectorUnix, 0)
	tests := []struct {
		name             string
		signature, token string
		secrets          []string
		want             error
	}{
		{"signature", vectorSignature, "", []string{vectorSecret}, nil},
		{"token", "", vectorSecret, []string{vectorSecret}, nil},
		{"token, previous secret", "", vectorSecret, []string{"other", vectorSecret}, nil},
		{"wrong token", "", "29b1ff5779c76bd48ba6705eb99ff97", []string{vectorSecret}, ErrTokenMismatch},
		{"empty secret never matches", "", "x", []string{""}, ErrTokenMismatch},
		{"token does not rescue a bad signature", "timestamp=1642080837,signature=00", vectorSecret, []string{vectorSecret}, ErrMalformed},
		{"neither", "", "", []string{vectorSecret}, ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := Verify(tt.signature, tt.token, body, tt.secrets, now)
			if !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

// FuzzParseSignature: any header parses or fails cleanly, and one that
// parses re-verifies consistently.
func FuzzParseSignature(f *testing.F) {
	f.Add(vectorSignature)
	f.Add(" signature=AB , timestamp=1 ")
	f.Add("timestamp=,signature=")
	f.Add(",,,=,=")
	f.Add("timestamp=1642080837,signature=582d496ac2d869dd97a3101c4cda346288c49a742592daf582ec64c86449f79c,timestamp=1")
	f.Fuzz(func(t *testing.T, header string) {
		sig, err := ParseSignature(header)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if sig.Unix < 0 || !strings.Contains(header, sig.Timestamp) {
			t.Fatalf("parsed %+v from %q", sig, header)
		}
		// A parsed header verifies only against its own MAC.
		err = ValidSignature(header, []byte("{}"), []string{"s"}, time.Unix(sig.Unix, 0))
		if err != nil && !errors.Is(err, ErrSignatureMismatch) {
			t.Fatalf("ValidSignature after a parse: %v", err)
		}
	})
}
