package model

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *CreateWebhookEndpointPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *UpdateWebhookEndpointPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *DeleteWebhookEndpointPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RotateWebhookSecretPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }

// SetUserErrors sets the problems with the input; none is an empty list.
func (p *RedeliverWebhookPayload) SetUserErrors(ue []*UserError) { p.UserErrors = ue }
