package secrets

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// maxKeyFileSize bounds what is read from a key file; a key takes 45 bytes.
const maxKeyFileSize = 4096

// LoadOrCreateMasterKey reads the master key from the file at path: one line
// holding the key base64-encoded. When the file does not exist it generates a
// key and writes it there (see WriteMasterKeyFile) and reports created.
//
// The file must be a regular file readable by its owner only; a file that
// grants any permission to group or others is refused, since anyone who reads
// it can decrypt every stored secret.
//
// Two processes racing to create the file end up with the same key: the
// loser reads what the winner wrote.
func LoadOrCreateMasterKey(path string) (key MasterKey, created bool, err error) {
	if path == "" {
		return MasterKey{}, false, errors.New("secrets: master key file path is empty")
	}
	key, err = readMasterKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, false, err
	}
	if key, err = GenerateMasterKey(); err != nil {
		return MasterKey{}, false, err
	}
	err = WriteMasterKeyFile(path, key)
	if errors.Is(err, fs.ErrExist) {
		key, err = readMasterKeyFile(path)
		return key, false, err
	}
	if err != nil {
		return MasterKey{}, false, err
	}
	return key, true, nil
}

func readMasterKeyFile(path string) (MasterKey, error) {
	f, err := os.Open(path)
	if err != nil {
		return MasterKey{}, fmt.Errorf("secrets: reading master key: %w", err)
	}
	defer f.Close()
	// Stat the open file, not the path, so the checks apply to what is read.
	info, err := f.Stat()
	if err != nil {
		return MasterKey{}, fmt.Errorf("secrets: reading master key: %w", err)
	}
	if !info.Mode().IsRegular() {
		return MasterKey{}, fmt.Errorf("secrets: master key file %s is not a regular file", path)
	}
	// Windows has no Unix permission bits to check.
	if perm := info.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return MasterKey{}, fmt.Errorf(
			"secrets: master key file %s has permissions %04o, open to group or others; "+
				"restrict it to its owner with: chmod 600 %s", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	defer clear(data)
	if err != nil {
		return MasterKey{}, fmt.Errorf("secrets: reading master key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return MasterKey{}, fmt.Errorf("secrets: master key file %s is larger than %d bytes; it should hold one base64 line", path, maxKeyFileSize)
	}
	key, err := ParseMasterKey(string(data))
	if err != nil {
		return MasterKey{}, fmt.Errorf("%w (in file %s)", err, path)
	}
	return key, nil
}

// WriteMasterKeyFile writes key to a new file at path, base64-encoded on one
// line, with permissions 0600; missing parent directories are created with
// permissions 0700. The write is atomic: the file appears complete or not at
// all. An existing file is never replaced: the error then wraps fs.ErrExist.
func WriteMasterKeyFile(path string, key MasterKey) error {
	if key.IsZero() {
		return errors.New("secrets: writing master key: the key is unset")
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("secrets: creating master key directory: %w", err)
	}
	// CreateTemp makes the file 0600 from the start.
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("secrets: writing master key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	_, err = io.WriteString(tmp, key.ExportBase64()+"\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("secrets: writing master key to %s: %w", tmpName, err)
	}
	if err := publish(tmpName, path); err != nil {
		return err
	}
	syncDir(dir)
	return nil
}

// publish moves the complete temporary file to path without replacing an
// existing file. A hard link does that atomically; file systems without hard
// links fall back to a check followed by a rename.
func publish(tmpName, path string) error {
	err := os.Link(tmpName, path)
	if err == nil {
		return nil
	}
	if errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("secrets: master key file %s already exists: %w", path, fs.ErrExist)
	}
	if _, serr := os.Lstat(path); serr == nil {
		return fmt.Errorf("secrets: master key file %s already exists: %w", path, fs.ErrExist)
	}
	if rerr := os.Rename(tmpName, path); rerr != nil {
		return fmt.Errorf("secrets: writing master key: %w", errors.Join(err, rerr))
	}
	return nil
}

// syncDir makes the new directory entry durable where the platform allows;
// failure only weakens durability, so it is ignored.
func syncDir(dir string) {
	if runtime.GOOS == "windows" {
		return
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
