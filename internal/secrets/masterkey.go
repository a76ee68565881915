package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

const (
	keySize   = 32 // AES-256, for master and data keys
	nonceSize = 12 // the standard AES-GCM nonce
	tagSize   = 16 // the standard AES-GCM tag

	// masterKeyIDLabel separates the hash that names a master key from any
	// other use of SHA-256 over the same bytes.
	masterKeyIDLabel = "plugboard master key id v1\x00"
)

// MasterKey is the 32-byte key that wraps data keys. Its zero value holds no
// key (see IsZero).
//
// A MasterKey never prints its bytes: fmt verbs, String, GoString and
// log/slog all show only its ID.
type MasterKey struct {
	id string
	// secret holds the key material behind a func: fmt prints a func as an
	// address whatever the verb, so not even fmt's reflection over a struct
	// that holds a MasterKey in an unexported field reaches the key.
	secret func() *masterSecret
}

type masterSecret struct {
	raw  [keySize]byte
	aead cipher.AEAD
}

// hiddenAEAD hides an AEAD (whose state holds the expanded key) from fmt's
// reflection, as MasterKey.secret does.
type hiddenAEAD func() cipher.AEAD

func hide(a cipher.AEAD) hiddenAEAD { return func() cipher.AEAD { return a } }

// GenerateMasterKey returns a new master key of 32 random bytes.
func GenerateMasterKey() (MasterKey, error) {
	var buf [keySize]byte
	defer clear(buf[:])
	if _, err := io.ReadFull(rand.Reader, buf[:]); err != nil {
		return MasterKey{}, fmt.Errorf("secrets: generating a master key: %w", err)
	}
	return newMasterKey(buf[:])
}

// ParseMasterKey parses a master key given in configuration or in the
// environment: 32 bytes, base64-encoded (standard or URL alphabet, padded or
// not). Surrounding white space is ignored. Errors never repeat the input.
func ParseMasterKey(s string) (MasterKey, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return MasterKey{}, errors.New("secrets: master key is empty")
	}
	raw, err := decodeBase64(s)
	if err != nil {
		return MasterKey{}, errors.New("secrets: master key is not valid base64")
	}
	defer clear(raw)
	return newMasterKey(raw)
}

func decodeBase64(s string) ([]byte, error) {
	var err error
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawStdEncoding,
		base64.URLEncoding, base64.RawURLEncoding,
	} {
		var b []byte
		if b, err = enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, err
}

func newMasterKey(b []byte) (MasterKey, error) {
	if len(b) != keySize {
		return MasterKey{}, fmt.Errorf("secrets: master key is %d bytes; want %d", len(b), keySize)
	}
	ms := new(masterSecret)
	copy(ms.raw[:], b)
	aead, err := newAEAD(ms.raw[:])
	if err != nil {
		return MasterKey{}, err
	}
	ms.aead = aead
	h := sha256.New()
	h.Write([]byte(masterKeyIDLabel))
	h.Write(ms.raw[:])
	return MasterKey{
		id:     hex.EncodeToString(h.Sum(nil)[:4]),
		secret: func() *masterSecret { return ms },
	}, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secrets: %w", err)
	}
	return aead, nil
}

// ID names the key without revealing it: 8 hex digits of a SHA-256 hash of
// the key. Data keys record the ID of the master key that wraps them. The
// zero MasterKey has the empty ID.
func (k MasterKey) ID() string { return k.id }

// IsZero reports whether k holds no key.
func (k MasterKey) IsZero() bool { return k.secret == nil }

// ExportBase64 returns the key's bytes, base64-encoded (standard alphabet,
// padded): the form LoadOrCreateMasterKey and ParseMasterKey read. It is the
// only way to get the secret out of a MasterKey; use it to write the key
// where an operator keeps it, never to log it.
func (k MasterKey) ExportBase64() string {
	if k.secret == nil {
		return ""
	}
	return base64.StdEncoding.EncodeToString(k.secret().raw[:])
}

// String returns a redacted description naming only the key's ID.
func (k MasterKey) String() string {
	if k.IsZero() {
		return "MasterKey(unset)"
	}
	return "MasterKey(" + k.id + ", redacted)"
}

// GoString returns a redacted description for %#v.
func (k MasterKey) GoString() string {
	if k.IsZero() {
		return "secrets.MasterKey{}"
	}
	return `secrets.MasterKey{ID: "` + k.id + `", redacted}`
}

// Format implements fmt.Formatter so that no verb or flag (%x, %d, %+v, ...)
// reaches the key's bytes.
func (k MasterKey) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		io.WriteString(f, k.GoString())
	case verb == 'q':
		io.WriteString(f, strconv.Quote(k.String()))
	default:
		io.WriteString(f, k.String())
	}
}

// LogValue implements slog.LogValuer: a logged MasterKey shows only its ID.
func (k MasterKey) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", k.id), slog.Bool("redacted", true))
}

// wrapVersion is the first byte of a wrapped data key.
const wrapVersion = 1

// wrappedSize is the length of a wrapped data key: version, nonce, sealed key
// and tag.
const wrappedSize = 1 + nonceSize + keySize + tagSize

// wrap seals a data key under k, bound to the data key's ID.
func (k MasterKey) wrap(id string, dataKey []byte) ([]byte, error) {
	out := make([]byte, 1+nonceSize, wrappedSize)
	out[0] = wrapVersion
	if _, err := io.ReadFull(rand.Reader, out[1:]); err != nil {
		return nil, fmt.Errorf("secrets: generating a nonce: %w", err)
	}
	return k.secret().aead.Seal(out, out[1:], dataKey, []byte(id)), nil
}

// unwrap opens a data key wrapped by k. The caller clears the result.
func (k MasterKey) unwrap(id string, wrapped []byte) ([]byte, error) {
	if len(wrapped) != wrappedSize || wrapped[0] != wrapVersion {
		return nil, fmt.Errorf("%w: wrapped data key %s is not a version %d wrapped key of %d bytes",
			ErrMalformed, id, wrapVersion, wrappedSize)
	}
	raw, err := k.secret().aead.Open(nil, wrapped[1:1+nonceSize], wrapped[1+nonceSize:], []byte(id))
	if err != nil {
		return nil, fmt.Errorf("%w: wrapped data key %s failed authentication under master key %s",
			ErrDecrypt, id, k.id)
	}
	return raw, nil
}
