package oauth

import (
	"context"
	"time"
)

// observedRenew is renew, its duration and outcome told to
// Config.ObserveRefresh when one is set.
func (s *Service) observedRenew(ctx context.Context, f *Flow, old *Token) (*Token, error) {
	start := time.Now()
	tok, err := s.renew(ctx, f, old)
	if s.observeRefresh != nil {
		s.observeRefresh(time.Since(start), err)
	}
	return tok, err
}
