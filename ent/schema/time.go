package schema

import "time"

// timeNow is the clock of default timestamps, in UTC so SQLite and
// PostgreSQL store the same instant the same way.
func timeNow() time.Time { return time.Now().UTC() }
