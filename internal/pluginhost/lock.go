package pluginhost

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LockVersion is the format version of the lock file this package reads and
// writes.
const LockVersion = 1

// DefaultLockName is the file name of the lock file inside the plugin
// directory when Config.LockPath is empty.
const DefaultLockName = "plugboard.lock"

// Lock is the content of a lock file: the SHA-256 pin of every plugin binary
// the host may launch, keyed by binary name.
type Lock struct {
	Version int                  `json:"version"`
	Plugins map[string]LockEntry `json:"plugins"`
}

// LockEntry pins one plugin binary.
type LockEntry struct {
	// SHA256 is the lower-case hex SHA-256 of the binary.
	SHA256 string `json:"sha256"`
	// Size is the binary's size in bytes, for people reading the file; only
	// the hash is checked.
	Size int64 `json:"size"`
}

// DefaultLockPath returns the lock file path used for a plugin directory
// when no explicit path is configured.
func DefaultLockPath(dir string) string {
	return filepath.Join(dir, DefaultLockName)
}

// ReadLock reads and checks a lock file. A missing file is reported with an
// error that wraps fs.ErrNotExist.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plugin lock: %w", err)
	}
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("parse plugin lock %s: %w", path, err)
	}
	if l.Version != LockVersion {
		return nil, fmt.Errorf("plugin lock %s: unsupported version %d (want %d)", path, l.Version, LockVersion)
	}
	if l.Plugins == nil {
		l.Plugins = map[string]LockEntry{}
	}
	for name, e := range l.Plugins {
		if name == "" || strings.ContainsAny(name, `/\`) {
			return nil, fmt.Errorf("plugin lock %s: invalid plugin name %q", path, name)
		}
		if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != sha256.Size {
			return nil, fmt.Errorf("plugin lock %s: plugin %q: sha256 is not 64 hex digits", path, name)
		}
		// Normalise so comparisons with computed sums are plain string ==.
		e.SHA256 = strings.ToLower(e.SHA256)
		l.Plugins[name] = e
	}
	return &l, nil
}

// Write stores the lock at path atomically: it writes a hidden temporary
// file in the same directory, syncs it and renames it over path. The output
// is stable: indented, with plugins sorted by name.
func (l *Lock) Write(path string) error {
	out := Lock{Version: LockVersion, Plugins: l.Plugins}
	if out.Plugins == nil {
		out.Plugins = map[string]LockEntry{}
	}
	// encoding/json sorts map keys, which keeps the file stable.
	data, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return fmt.Errorf("encode plugin lock: %w", err)
	}
	data = append(data, '\n')

	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write plugin lock: %w", err)
	}
	tmpName := tmp.Name()
	defer func() {
		if tmpName != "" {
			_ = os.Remove(tmpName)
		}
	}()
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write plugin lock: %w", err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write plugin lock: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write plugin lock: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write plugin lock: %w", err)
	}
	if err := os.Rename(tmpName, path); err != nil {
		return fmt.Errorf("write plugin lock: %w", err)
	}
	tmpName = ""
	// Make the rename durable; not every platform can sync a directory.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// Pin hashes every regular executable file in dir (skipping the lock file,
// hidden files and non-executables), writes a fresh lock with their SHA-256
// sums to lockPath atomically and returns it. An empty lockPath means
// DefaultLockPath(dir). It trusts whatever the directory holds, for a
// directory its caller just filled (tests); `plugboard plugins pin` pins by
// name with PinNames.
func Pin(dir, lockPath string) (*Lock, error) {
	if lockPath == "" {
		lockPath = DefaultLockPath(dir)
	}
	bins, err := scanDir(dir, lockPath)
	if err != nil {
		return nil, err
	}
	l := &Lock{Version: LockVersion, Plugins: make(map[string]LockEntry, len(bins))}
	for _, b := range bins {
		l.Plugins[b.name] = LockEntry{SHA256: b.sha256, Size: b.size}
	}
	if err := l.Write(lockPath); err != nil {
		return nil, err
	}
	return l, nil
}

// PinChange is a pin whose binary changed: its name, the pinned SHA-256 and
// the binary's SHA-256 now.
type PinChange struct {
	Name string
	Old  string
	New  string
}

// ChangedPinsError is PinNames's refusal to replace pins without force: the
// binaries changed since they were pinned, which an upgrade does and so
// does tampering. Nothing was written.
type ChangedPinsError struct {
	Changes []PinChange
}

func (e *ChangedPinsError) Error() string {
	var b strings.Builder
	for _, c := range e.Changes {
		fmt.Fprintf(&b, "plugin %s changed since it was pinned:\n  pinned sha256 %s\n  now    sha256 %s\n", c.Name, c.Old, c.New)
	}
	b.WriteString("not re-pinned: check where the binaries came from, then pin them again with --force")
	return b.String()
}

// PinNames pins the named plugin binaries of dir in the lock file at
// lockPath (DefaultLockPath(dir) when empty), keeping every other pin; a
// missing lock file starts empty. A name that is not a plugin executable of
// dir is an error. A binary pinned with another SHA-256 is re-pinned only
// with force; without it nothing is written and the error is a
// *ChangedPinsError naming the old and new sums. It returns the lock written
// and the pins that force replaced.
func PinNames(dir, lockPath string, names []string, force bool) (*Lock, []PinChange, error) {
	if lockPath == "" {
		lockPath = DefaultLockPath(dir)
	}
	if len(names) == 0 {
		return nil, nil, errors.New("name the plugins to pin (plugboard plugins list shows the binaries)")
	}
	l, err := ReadLock(lockPath)
	if errors.Is(err, fs.ErrNotExist) {
		l, err = &Lock{Version: LockVersion, Plugins: map[string]LockEntry{}}, nil
	}
	if err != nil {
		return nil, nil, err
	}
	bins, err := scanDir(dir, lockPath)
	if err != nil {
		return nil, nil, err
	}
	found := make(map[string]binary, len(bins))
	for _, b := range bins {
		found[b.name] = b
	}
	var changes []PinChange
	for _, name := range names {
		b, ok := found[name]
		if !ok {
			return nil, nil, fmt.Errorf("no plugin binary %q in %s (an executable file of that name)", name, dir)
		}
		if old, pinned := l.Plugins[name]; pinned && old.SHA256 != b.sha256 {
			changes = append(changes, PinChange{Name: name, Old: old.SHA256, New: b.sha256})
		}
		l.Plugins[name] = LockEntry{SHA256: b.sha256, Size: b.size}
	}
	if len(changes) > 0 && !force {
		return nil, nil, &ChangedPinsError{Changes: changes}
	}
	if err := l.Write(lockPath); err != nil {
		return nil, nil, err
	}
	return l, changes, nil
}

// binary is one plugin executable found in the plugin directory.
type binary struct {
	name   string
	path   string
	size   int64
	sha256 string
}

// scanDir lists and hashes the plugin executables in dir, sorted by name.
// Symbolic links are skipped on purpose: what is pinned and launched is the
// file itself.
func scanDir(dir, lockPath string) ([]binary, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read plugin dir: %w", err)
	}
	lockAbs, _ := filepath.Abs(lockPath)
	var out []binary
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") || !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(dir, name)
		if abs, _ := filepath.Abs(path); abs == lockAbs {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we were looking
		}
		if err != nil {
			return nil, fmt.Errorf("plugin dir: %w", err)
		}
		if info.Mode().Perm()&0o111 == 0 {
			continue
		}
		sum, size, err := hashFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, binary{name: name, path: path, size: size, sha256: sum})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

// hashFile returns the lower-case hex SHA-256 of a file and its size.
func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash plugin: %w", err)
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash plugin %s: %w", filepath.Base(path), err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
