package graph

import (
	"context"

	"github.com/plugboard/plugboard/internal/auth"
)

func requireViewer(ctx context.Context) error {
	_, err := auth.Require(ctx)
	return err
}

func requireAdmin(ctx context.Context) error {
	_, err := auth.RequireAdmin(ctx)
	return err
}
