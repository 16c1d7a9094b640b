package localstore

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

const (
	keySize   = 32 // AES-256
	nonceSize = 12 // the GCM standard nonce
)

// sealer seals values with AES-256-GCM: nonce || ciphertext+tag, with the
// secret's name as additional data.
type sealer struct {
	gcm cipher.AEAD
}

func newSealer(key []byte) (sealer, error) {
	if len(key) != keySize {
		return sealer{}, fmt.Errorf("secret key is %d bytes, want %d", len(key), keySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return sealer{}, fmt.Errorf("new cipher: %w", err)
	}
	gcm, err := cipher.NewGCMWithNonceSize(block, nonceSize)
	if err != nil {
		return sealer{}, fmt.Errorf("new gcm: %w", err)
	}
	return sealer{gcm: gcm}, nil
}

func (s sealer) seal(name string, plaintext []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+s.gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("make nonce: %w", err)
	}
	return s.gcm.Seal(nonce, nonce, plaintext, []byte(name)), nil
}

// errSealBroken says a sealed value does not open. It never carries any of
// the value.
var errSealBroken = errors.New("sealed value does not open (tampered with, or sealed under another key or name)")

func (s sealer) open(name string, sealed []byte) ([]byte, error) {
	if len(sealed) < nonceSize+s.gcm.Overhead() {
		return nil, errSealBroken
	}
	plain, err := s.gcm.Open(nil, sealed[:nonceSize], sealed[nonceSize:], []byte(name))
	if err != nil {
		return nil, errSealBroken
	}
	return plain, nil
}

// loadOrCreateKey reads the key file at path, creating it with a random
// key and mode 0600 when it does not exist. A key file that group or
// others can use is refused.
func loadOrCreateKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	key = make([]byte, keySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("make secret key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Another process made it first: use theirs.
		return readKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("create secret key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return nil, fmt.Errorf("write secret key: %w", err)
	}
	return key, nil
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("open secret key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat secret key: %w", err)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("secret key %s has mode %#o: group and others must have no access (chmod 600 %s)", path, perm, path)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret key %s is not a regular file", path)
	}
	key, err := io.ReadAll(io.LimitReader(f, keySize+1))
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	if len(key) != keySize {
		return nil, fmt.Errorf("secret key %s is not %d bytes long", path, keySize)
	}
	return key, nil
}
