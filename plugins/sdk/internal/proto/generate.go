// Package proto holds the plugboard plugin wire protocol: plugboard.proto and
// the Go code generated from it. It is internal to the SDK; package sdk
// converts these messages to and from its Go types.
//
// The generated files are committed so that users need no protoc. To
// regenerate them after editing plugboard.proto, run `go generate ./...` in
// plugins/sdk with protoc on the PATH (the committed files were made with
// protoc 3.21.12, the version Debian bookworm ships).
package proto

//go:generate go run gen.go
