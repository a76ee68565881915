package connection

import (
	"context"
	"errors"
	"fmt"

	"github.com/plugboard/plugboard/internal/auth"
	"github.com/plugboard/plugboard/internal/secrets/sealed"
)

// Keys rotates plugboard's data key for an admin.
//
// Data keys are plugboard-wide, not per organization: any organization's
// admin may rotate, and the rotation re-encrypts the sealed values of every
// organization. Rotating is always safe (nothing becomes unreadable); the
// event is written to the audit log of the admin's organization.
type Keys struct {
	// Service writes the audit event.
	Service *Service
	// Rotator makes the new data key and re-encrypts; nil when the server
	// has no keyring.
	Rotator *sealed.Rotator
}

// Rotate makes a new active data key and re-encrypts every sealed value
// under it. A rotation stopped midway is audited as such and returns its
// error; running it again finishes what is left.
func (k *Keys) Rotate(ctx context.Context) (sealed.Result, error) {
	v, err := Authorize(ctx, RotateKeys)
	if err != nil {
		return sealed.Result{}, err
	}
	if k == nil || k.Rotator == nil || k.Rotator.Keys == nil {
		return sealed.Result{}, errors.New("rotateEncryptionKey: the server has no keyring")
	}
	res, rerr := k.Rotator.Rotate(ctx)
	if res.KeyID == "" {
		return res, rerr
	}
	if err := k.auditRotation(ctx, v, res, rerr); err != nil && rerr == nil {
		rerr = fmt.Errorf("auditing the key rotation: %w", err)
	}
	return res, rerr
}

// auditRotation records a rotation, finished or stopped by rerr, even if
// the request was cancelled meanwhile.
func (k *Keys) auditRotation(ctx context.Context, v *auth.Viewer, res sealed.Result, rerr error) error {
	msg := fmt.Sprintf("plugboard-wide data key rotated to %s: %d value(s) re-encrypted, %d remaining",
		res.KeyID, res.Reencrypted, res.Remaining)
	if rerr != nil {
		msg = fmt.Sprintf("plugboard-wide data key rotation to %s stopped after %d value(s): run it again to finish",
			res.KeyID, res.Reencrypted)
	}
	return k.Service.writeAudit(auth.SystemContext(context.WithoutCancel(ctx)), k.Service.DB, auditEntry{
		orgID: v.OrganizationID, actor: v.Actor, action: "encryption_key.rotated", message: msg,
	})
}
