package secrets

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"
)

// DefaultActiveKeyTTL is how long a Keyring trusts its memory of which data
// key is active before asking the KeyStore again.
const DefaultActiveKeyTTL = time.Minute

// Keyring encrypts and decrypts values with data keys wrapped by one master
// key. It caches unwrapped data keys in memory and is safe for concurrent use.
//
// With several replicas sharing one store, a Rotate on one replica reaches the
// others within the active-key TTL (WithActiveKeyTTL). Until then they keep
// encrypting under the previous key, which stays valid for decryption, so
// nothing is lost; NeedsReencrypt on those replicas may lag as long.
type Keyring struct {
	master MasterKey
	store  KeyStore
	ttl    time.Duration
	now    func() time.Time

	// createMu serializes creating data keys in this process, so concurrent
	// first encryptions make one key, not several.
	createMu sync.Mutex

	mu sync.RWMutex
	// keys holds unwrapped data keys by ID. A data key never changes once
	// made, so entries never go stale.
	keys     map[string]hiddenAEAD
	activeID string
	activeAt time.Time // when activeID was learned
	// gen counts local changes of the active key, so a slower store read
	// started before a Rotate cannot overwrite the newer key.
	gen uint64
}

// Option configures a Keyring.
type Option func(*Keyring)

// WithActiveKeyTTL sets how long the Keyring trusts its memory of the active
// data key (default DefaultActiveKeyTTL). Zero asks the store on every
// Encrypt.
func WithActiveKeyTTL(d time.Duration) Option {
	return func(k *Keyring) { k.ttl = max(d, 0) }
}

// NewKeyring returns a Keyring over store whose data keys are wrapped by
// master. It panics if master is unset or store is nil: both are programming
// errors, caught at start-up.
func NewKeyring(master MasterKey, store KeyStore, opts ...Option) *Keyring {
	if master.IsZero() {
		panic("secrets: NewKeyring: master key is unset")
	}
	if store == nil {
		panic("secrets: NewKeyring: KeyStore is nil")
	}
	k := &Keyring{
		master: master,
		store:  store,
		ttl:    DefaultActiveKeyTTL,
		now:    time.Now,
		keys:   make(map[string]hiddenAEAD),
	}
	for _, opt := range opts {
		opt(k)
	}
	return k
}

// String describes the Keyring by its master key's ID.
func (k *Keyring) String() string { return "secrets.Keyring(master " + k.master.ID() + ")" }

// Format implements fmt.Formatter: every verb prints String, never the cached
// keys.
func (k *Keyring) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		io.WriteString(f, strconv.Quote(k.String()))
		return
	}
	io.WriteString(f, k.String())
}

// MasterKeyID returns the ID of the Keyring's master key.
func (k *Keyring) MasterKeyID() string { return k.master.ID() }

// Encrypt seals plaintext under the active data key, creating the first data
// key if the store has none. aad (associated data) is authenticated but not
// stored: Decrypt must be given the same bytes. Pass what identifies where
// the value lives, such as the credential ID and field name.
func (k *Keyring) Encrypt(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	id, aead, err := k.activeKey(ctx, true)
	if err != nil {
		return nil, err
	}
	return seal(aead, id, plaintext, aad)
}

func seal(aead cipher.AEAD, keyID string, plaintext, aad []byte) ([]byte, error) {
	hdr := 2 + len(keyID)
	out := make([]byte, 0, hdr+nonceSize+len(plaintext)+tagSize)
	out = appendHeader(out, keyID)
	out = out[:hdr+nonceSize]
	nonce := out[hdr:]
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("secrets: generating a nonce: %w", err)
	}
	return aead.Seal(out, nonce, plaintext, additionalData(out[:hdr], aad)), nil
}

// Decrypt opens a ciphertext made by Encrypt, under whichever data key sealed
// it, active or retired. aad must equal the bytes given to Encrypt. A
// ciphertext that fails authentication (tampered, wrong aad, wrong key)
// yields an error wrapping ErrDecrypt and nothing else.
func (k *Keyring) Decrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	env, hdr, err := parseCiphertext(ciphertext)
	if err != nil {
		return nil, err
	}
	aead, err := k.dataKey(ctx, env.KeyID)
	if err != nil {
		return nil, err
	}
	plaintext, err := aead.Open(nil, env.Nonce, env.Sealed, additionalData(ciphertext[:hdr], aad))
	if err != nil {
		return nil, fmt.Errorf("%w (data key %s)", ErrDecrypt, env.KeyID)
	}
	return plaintext, nil
}

// Rotate makes a new data key and stores it as the only active one; later
// encryptions use it. Ciphertexts under the previous keys still decrypt; find
// them with NeedsReencrypt and move them with Reencrypt.
func (k *Keyring) Rotate(ctx context.Context) (*DataKey, error) {
	k.createMu.Lock()
	defer k.createMu.Unlock()
	dk, err := k.createKey(ctx)
	if err != nil {
		return nil, err
	}
	c := *dk
	return &c, nil
}

// NeedsReencrypt reports whether ciphertext is sealed under a data key other
// than the active one (as of the active-key TTL). With no active key at all it
// reports true. It does not decrypt, so it does not check authenticity.
func (k *Keyring) NeedsReencrypt(ctx context.Context, ciphertext []byte) (bool, error) {
	env, err := ParseCiphertext(ciphertext)
	if err != nil {
		return false, err
	}
	id, _, err := k.activeKey(ctx, false)
	if errors.Is(err, ErrNoActiveKey) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return env.KeyID != id, nil
}

// Reencrypt decrypts ciphertext and seals it again under the active data key,
// with the same aad. A ciphertext already under the active key is checked and
// returned as is (a copy), so a re-encryption sweep can skip writing it back
// when bytes.Equal reports no change.
func (k *Keyring) Reencrypt(ctx context.Context, ciphertext, aad []byte) ([]byte, error) {
	env, err := ParseCiphertext(ciphertext)
	if err != nil {
		return nil, err
	}
	activeID, aead, err := k.activeKey(ctx, true)
	if err != nil {
		return nil, err
	}
	plaintext, err := k.Decrypt(ctx, ciphertext, aad)
	if err != nil {
		return nil, err
	}
	defer clear(plaintext)
	if env.KeyID == activeID {
		return bytes.Clone(ciphertext), nil
	}
	return seal(aead, activeID, plaintext, aad)
}

// activeKey returns the active data key, from memory while the TTL allows,
// otherwise from the store. With create, it makes the first data key when the
// store has none.
func (k *Keyring) activeKey(ctx context.Context, create bool) (string, cipher.AEAD, error) {
	k.mu.RLock()
	id, at, gen := k.activeID, k.activeAt, k.gen
	k.mu.RUnlock()
	if aead := k.cached(id); aead != nil && k.now().Sub(at) < k.ttl {
		return id, aead, nil
	}

	dk, err := k.store.ActiveDataKey(ctx)
	if err == nil && dk == nil {
		err = ErrNoActiveKey
	}
	if errors.Is(err, ErrNoActiveKey) && create {
		return k.createFirstKey(ctx)
	}
	if err != nil {
		return "", nil, fmt.Errorf("secrets: loading the active data key: %w", err)
	}
	aead, err := k.open(dk)
	if err != nil {
		return "", nil, err
	}
	k.mu.Lock()
	if k.gen == gen {
		k.activeID, k.activeAt = dk.ID, k.now()
	}
	k.mu.Unlock()
	return dk.ID, aead, nil
}

// createFirstKey makes the first data key, unless another goroutine or
// replica made one meanwhile. Two replicas racing here each make a key; the
// store keeps the later one active and both stay valid for decryption.
func (k *Keyring) createFirstKey(ctx context.Context) (string, cipher.AEAD, error) {
	k.createMu.Lock()
	defer k.createMu.Unlock()
	dk, err := k.store.ActiveDataKey(ctx)
	switch {
	case err == nil && dk != nil:
		aead, err := k.open(dk)
		if err != nil {
			return "", nil, err
		}
		k.setActive(dk.ID)
		return dk.ID, aead, nil
	case err != nil && !errors.Is(err, ErrNoActiveKey):
		return "", nil, fmt.Errorf("secrets: loading the active data key: %w", err)
	}
	if dk, err = k.createKey(ctx); err != nil {
		return "", nil, err
	}
	return dk.ID, k.cached(dk.ID), nil
}

// createKey makes a data key, stores it as the active one and caches it.
// The caller holds createMu.
func (k *Keyring) createKey(ctx context.Context) (*DataKey, error) {
	dk, raw, err := newDataKey(k.master, k.now())
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	if err := k.store.CreateDataKey(ctx, dk); err != nil {
		return nil, fmt.Errorf("secrets: storing data key %s: %w", dk.ID, err)
	}
	k.cache(dk.ID, aead)
	k.setActive(dk.ID)
	return dk, nil
}

func (k *Keyring) setActive(id string) {
	k.mu.Lock()
	k.activeID, k.activeAt = id, k.now()
	k.gen++
	k.mu.Unlock()
}

// dataKey returns the data key with the given ID, unwrapping it from the
// store on first use.
func (k *Keyring) dataKey(ctx context.Context, id string) (cipher.AEAD, error) {
	if aead := k.cached(id); aead != nil {
		return aead, nil
	}
	dk, err := k.store.DataKey(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("secrets: loading data key %s: %w", id, err)
	}
	if dk == nil {
		return nil, fmt.Errorf("%w: %s", ErrUnknownKey, id)
	}
	if dk.ID != id {
		return nil, fmt.Errorf("secrets: loading data key %s: the store returned key %q", id, dk.ID)
	}
	return k.open(dk)
}

// open unwraps dk and caches it.
func (k *Keyring) open(dk *DataKey) (cipher.AEAD, error) {
	if aead := k.cached(dk.ID); aead != nil {
		return aead, nil
	}
	raw, err := unwrapDataKey(k.master, dk)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(raw)
	clear(raw)
	if err != nil {
		return nil, err
	}
	return k.cache(dk.ID, aead), nil
}

// cached returns the unwrapped data key with the given ID, or nil.
func (k *Keyring) cached(id string) cipher.AEAD {
	k.mu.RLock()
	h := k.keys[id]
	k.mu.RUnlock()
	if h == nil {
		return nil
	}
	return h()
}

// cache remembers an unwrapped data key and returns the one to use: the first
// cached, if two goroutines unwrapped it at once.
func (k *Keyring) cache(id string, aead cipher.AEAD) cipher.AEAD {
	k.mu.Lock()
	defer k.mu.Unlock()
	if h := k.keys[id]; h != nil {
		return h()
	}
	k.keys[id] = hide(aead)
	return aead
}
