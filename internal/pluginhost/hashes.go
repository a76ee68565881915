package pluginhost

// Hashes returns the SHA-256 of every plugin executable in dir (the lock
// file at lockPath excluded), by binary name: what `plugboard plugins list`
// compares with the pins.
func Hashes(dir, lockPath string) (map[string]string, error) {
	bins, err := scanDir(dir, lockPath)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(bins))
	for _, b := range bins {
		out[b.name] = b.sha256
	}
	return out, nil
}
