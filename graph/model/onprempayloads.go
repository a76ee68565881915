package model

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateOnPremResourcePayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RotateOnPremResourceTokenPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *DeleteOnPremResourcePayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }
