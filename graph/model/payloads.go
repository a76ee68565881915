package model

// A mutation's payload carries the userErrors of its input; SetUserErrors
// lets one helper of package graph answer every mutation.

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *BindInstanceConnectionPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateAPITokenPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateConnectionPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateConnectionTemplatePayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateCustomerPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateInstancePayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateIntegrationPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateUserPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *DeployInstancePayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *DisconnectCredentialPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RegisterSigningKeyPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RevokeAPITokenPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RevokeSigningKeyPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RollbackCredentialPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RotateEncryptionKeyPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *SaveCredentialPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *StartOAuth2Payload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *TestCredentialPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *UpdateConnectionPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *UpdateOrganizationPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; a refused delete
// deleted nothing, so it names no deleted id.
func (p *DeleteConnectionPayload) SetUserErrors(ue []*UserError) {
	p.UserErrors = ue
	if len(ue) > 0 {
		p.DeletedID = nil
	}
}

// SetUserErrors sets the problems with the input; a refused delete
// deleted nothing, so it names no deleted id.
func (p *DeleteInstancePayload) SetUserErrors(ue []*UserError) {
	p.UserErrors = ue
	if len(ue) > 0 {
		p.DeletedID = nil
	}
}
