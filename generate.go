// Package plugboard is the root of the plugboard module. Its only code is the
// generation entry point: `go generate .` runs the ent generator (which also
// writes graph/ent.graphqls), then gqlgen, in that order.
package plugboard

//go:generate go run -mod=mod ./ent/entc.go
//go:generate go run -mod=mod github.com/99designs/gqlgen generate --config gqlgen.yml
