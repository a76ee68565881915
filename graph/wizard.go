// Conversions of the config wizard to its GraphQL types.
package graph

import (
	"github.com/plugboard/plugboard/ent"
	"github.com/plugboard/plugboard/ent/onpremresource"
	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
)

// wizardModel converts the domain's wizard for the API.
func wizardModel(w *connection.Wizard) *model.ConfigWizard {
	elems := make([]*model.WizardConnection, 0, len(w.Slots))
	for _, s := range w.Slots {
		e := &model.WizardConnection{
			SlotKey:      s.Slot.Key,
			Label:        s.Slot.Label,
			ConnectionID: s.Connection.ID,
			Scope:        s.Connection.Scope,
			TypeKey:      s.Type.Key,
			TypeLabel:    s.Type.Label,
			AuthKind:     s.Type.AuthKind,
			Action:       model.WizardAction(s.Action),
			Credential:   s.Credential,
			Status:       s.Status,
			Connected:    s.Connected,
			Fields:       make([]*model.WizardField, 0, len(s.Fields)),
			Existing:     s.Existing,
			Errors:       make([]*model.UserError, 0, len(s.Errors)),
		}
		if e.Existing == nil {
			e.Existing = []*ent.Credential{}
		}
		if s.Type.IconURL != "" {
			e.IconURL = &s.Type.IconURL
		}
		if s.ConnectLabel != "" {
			e.ConnectLabel = &s.ConnectLabel
		}
		if s.OnPrem != nil {
			e.OnPrem = &model.WizardOnPrem{Resource: s.OnPrem, Message: onPremMessage(s.OnPrem)}
		}
		for _, f := range s.Fields {
			in := f.Input
			opts := make([]*schematype.Option, len(in.Options))
			for i := range in.Options {
				opts[i] = &in.Options[i]
			}
			e.Fields = append(e.Fields, &model.WizardField{
				Key: in.Key, Label: in.Label, Type: in.Type, Required: in.Required,
				Default: optional(in.Default), Example: optional(in.Example),
				Placeholder: optional(in.Placeholder), Description: optional(in.Description),
				Secret: in.Secret, Options: opts, Pattern: optional(in.Pattern), PatternMessage: optional(in.PatternMessage),
				Collection: in.Collection, Template: optional(in.Template),
				Value: f.Value, IsSet: f.IsSet, UpdatedAt: f.UpdatedAt,
			})
		}
		for _, fe := range s.Errors {
			field := fe.Field
			if field == nil {
				field = []string{}
			}
			e.Errors = append(e.Errors, &model.UserError{Field: field, Code: fe.Code, Message: fe.Message})
		}
		elems = append(elems, e)
	}
	return &model.ConfigWizard{
		Instance: w.Instance,
		Pages:    []*model.WizardPage{{Key: "connections", Title: "Connections", Elements: elems}},
	}
}

// optional returns nil for an empty string.
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// onPremMessage tells the customer that a slot's connection goes through
// its on-prem agent, and whether the agent is connected.
func onPremMessage(r *ent.OnPremResource) string {
	msg := "This connection goes through your on-prem agent for " + r.Name + "; plugboard reaches the host through it, so you do not enter a host or port."
	if r.Status == onpremresource.StatusCONNECTED {
		return msg + " The agent is connected."
	}
	return msg + " The agent is not connected: start it (plugboard agent) next to the service."
}
