// Package connection holds the domain rules of plugboard's connections: the
// catalog of plugin-declared connection types, the credential save pipeline
// (static checks → plugin Validate → optional live Test → encrypt → store →
// audit), credential status, and what a connection is used by. It knows no
// GraphQL and no HTTP; the graph package calls it.
package connection
