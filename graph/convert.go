package graph

import (
	"github.com/plugboard/plugboard/graph/model"
	"github.com/plugboard/plugboard/internal/connection"
)

func testResult(tr *connection.TestResult) *model.TestResult {
	if tr == nil {
		return nil
	}
	return &model.TestResult{Ok: tr.OK, Message: tr.Message}
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

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
