package secrets_test

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/plugboard/plugboard/internal/secrets"
)

// memStore is an in-memory KeyStore, as the ent-backed store behaves.
type memStore struct {
	mu   sync.Mutex
	keys map[string]*secrets.DataKey
}

func newMemStore() *memStore { return &memStore{keys: map[string]*secrets.DataKey{}} }

func clone(k *secrets.DataKey) *secrets.DataKey {
	c := *k
	c.Wrapped = append([]byte(nil), k.Wrapped...)
	return &c
}

func (s *memStore) ActiveDataKey(ctx context.Context) (*secrets.DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.keys {
		if k.Active {
			return clone(k), nil
		}
	}
	return nil, secrets.ErrNoActiveKey
}

func (s *memStore) DataKey(ctx context.Context, id string) (*secrets.DataKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[id]
	if !ok {
		return nil, fmt.Errorf("data key %s: %w", id, secrets.ErrUnknownKey)
	}
	return clone(k), nil
}

func (s *memStore) CreateDataKey(ctx context.Context, k *secrets.DataKey) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[k.ID]; ok {
		return fmt.Errorf("data key %s already exists", k.ID)
	}
	for _, other := range s.keys {
		other.Active = false
	}
	c := clone(k)
	c.Active = true
	s.keys[k.ID] = c
	return nil
}

// all returns every stored key, oldest first.
func (s *memStore) all() []*secrets.DataKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*secrets.DataKey, 0, len(s.keys))
	for _, k := range s.keys {
		out = append(out, clone(k))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CreatedAt.Before(out[j].CreatedAt) })
	return out
}

// replace overwrites stored keys, as the caller does after RewrapDataKeys.
func (s *memStore) replace(keys []*secrets.DataKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		s.keys[k.ID] = clone(k)
	}
}

// put stores a key as is.
func (s *memStore) put(k *secrets.DataKey) { s.replace([]*secrets.DataKey{k}) }
