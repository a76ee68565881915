// Command postgres is the bundled plugboard plugin for PostgreSQL: host,
// port, database, user and password.
package main

import (
	"github.com/plugboard/plugboard/plugins/postgres/internal/postgres"
	"github.com/plugboard/plugboard/plugins/sdk"
)

func main() { sdk.Serve(postgres.New()) }
