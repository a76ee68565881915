package graph

import (
	"errors"

	"github.com/plugboard/plugboard/ent/schema/schematype"
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
	"github.com/plugboard/plugboard/internal/oauth"
)

func testResult(tr *connection.TestResult) *model.TestResult {
	if tr == nil {
		return nil
	}
	return &model.TestResult{Ok: tr.OK, Message: tr.Message}
}

// pointers points into s, for the lists gqlgen answers with.
func pointers[T any](s []T) []*T {
	out := make([]*T, len(s))
	for i := range s {
		out[i] = &s[i]
	}
	return out
}

func stringMap(m map[string]string) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// inputSettings are a connection's per-input settings by input key; none
// given is nil.
func inputSettings(list []*model.InputSettingInput) map[string]schematype.InputSetting {
	if len(list) == 0 {
		return nil
	}
	out := make(map[string]schematype.InputSetting, len(list))
	for _, s := range list {
		st := schematype.InputSetting{}
		if s.Source != nil {
			st.Source = schematype.InputSource(*s.Source)
		}
		out[s.Key] = st
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// refusedRedirect names the redirect input the allow-list refused; other
// errors pass as they are.
func refusedRedirect(input model.StartOAuth2Input, err error) error {
	if !errors.Is(err, oauth.ErrRedirectNotAllowed) {
		return err
	}
	var field []string
	var re *oauth.RedirectError
	switch {
	case errors.As(err, &re):
		field, err = []string{re.Field}, re
	case input.RedirectURL != nil && input.FailureURL == nil:
		field = []string{"redirectURL"}
	case input.FailureURL != nil && input.RedirectURL == nil:
		field = []string{"failureURL"}
	}
	return &connection.ValidationError{Fields: []connection.FieldError{{
		Field: field, Code: "NOT_ALLOWED", Message: err.Error(),
	}}}
}
