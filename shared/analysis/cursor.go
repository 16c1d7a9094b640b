package analysis

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// cursorTagLen is how many bytes of a digest over the tenant and the
// position end a listing cursor: enough that an edited cursor, or one
// given to another tenant, is told apart with certainty in practice.
const cursorTagLen = 12

// EncodeCursor makes the listing cursor of tenant's page that ends at pos
// (a store's own position: a sort key). A cursor names a position only:
// listings are always of the tenant who asks, so a cursor never reaches
// another tenant's data; its tag makes one that was edited, made up or
// given to another tenant an ErrBadCursor instead of a page from an
// arbitrary position.
func EncodeCursor(tenant string, pos []byte) string {
	b := make([]byte, 0, len(pos)+cursorTagLen)
	b = append(b, pos...)
	b = append(b, cursorTag(tenant, pos)...)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor returns the position of a cursor EncodeCursor made for
// tenant, or ErrBadCursor.
func DecodeCursor(tenant, cursor string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(cursor)
	if err != nil || len(b) <= cursorTagLen {
		return nil, ErrBadCursor
	}
	pos, tag := b[:len(b)-cursorTagLen], b[len(b)-cursorTagLen:]
	if subtle.ConstantTimeCompare(tag, cursorTag(tenant, pos)) != 1 {
		return nil, ErrBadCursor
	}
	return pos, nil
}

func cursorTag(tenant string, pos []byte) []byte {
	h := sha256.New()
	h.Write([]byte("kitefix listing cursor\x00"))
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write(pos)
	return h.Sum(nil)[:cursorTagLen]
}
