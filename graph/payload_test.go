package graph

import (
	"context"
	"errors"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
)

func TestPayload(t *testing.T) {
	refused := &connection.ValidationError{Fields: []connection.FieldError{{
		Field: []string{"name"}, Code: "REQUIRED", Message: "A name is required.",
	}}}
	failed := errors.New("store down")
	tests := []struct {
		name       string
		err        error
		wantErr    error
		wantErrors int  // userErrors in the payload
		wantID     bool // deletedID set
		wantGQL    int  // errors added to the response
	}{
		{name: "done", wantID: true},
		{name: "refused input", err: refused, wantErrors: 1, wantGQL: 1},
		{name: "other error", err: failed, wantErr: failed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := graphql.WithResponseContext(context.Background(), graphql.DefaultErrorPresenter, graphql.DefaultRecover)
			id := 7
			p, err := payload(ctx, &model.DeleteConnectionPayload{DeletedID: &id}, tt.err)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if gql := len(graphql.GetErrors(ctx)); gql != tt.wantGQL {
				t.Errorf("response errors = %d, want %d", gql, tt.wantGQL)
			}
			if tt.wantErr != nil {
				if p != nil {
					t.Errorf("payload = %+v, want none", p)
				}
				return
			}
			if p.UserErrors == nil || len(p.UserErrors) != tt.wantErrors {
				t.Errorf("userErrors = %#v, want %d (never null)", p.UserErrors, tt.wantErrors)
			}
			if (p.DeletedID != nil) != tt.wantID {
				t.Errorf("deletedID = %v, want set %v", p.DeletedID, tt.wantID)
			}
		})
	}
}

func TestSucceeded(t *testing.T) {
	p, err := succeeded(&model.RevokeAPITokenPayload{}, nil)
	if err != nil || p.UserErrors == nil || len(p.UserErrors) != 0 {
		t.Fatalf("succeeded = %+v, %v; want empty userErrors", p, err)
	}
	failed := errors.New("store down")
	if p, err := succeeded(&model.RevokeAPITokenPayload{}, failed); p != nil || !errors.Is(err, failed) {
		t.Fatalf("succeeded = %+v, %v; want the error alone", p, err)
	}
}

func TestInputSettings(t *testing.T) {
	customer := "CUSTOMER"
	if got := inputSettings(nil); got != nil {
		t.Errorf("no settings = %v, want nil", got)
	}
	if got := inputSettings([]*model.InputSettingInput{}); got != nil {
		t.Errorf("empty settings = %v, want nil", got)
	}
	got := inputSettings([]*model.InputSettingInput{{Key: "apiKey", Source: &customer}, {Key: "region"}})
	want := map[string]schematype.InputSetting{"apiKey": {Source: "CUSTOMER"}, "region": {}}
	if len(got) != len(want) || got["apiKey"].Source != want["apiKey"].Source || got["region"].Source != "" {
		t.Errorf("settings = %v, want %v", got, want)
	}
}
