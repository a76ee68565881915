package sdk_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeFiles returns the files README.md spells out for a vendor's
// module: each code block right after a "<!-- readme-file: NAME -->" line.
func readmeFiles(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile("(?s)<!-- readme-file: ([^ ]+) -->\n```[a-z]*\n(.*?)\n```\n")
	files := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(string(raw), -1) {
		files[m[1]] = m[2] + "\n"
	}
	for _, name := range []string{"go.mod", "main.go", "acme_test.go"} {
		if files[name] == "" {
			t.Fatalf("README.md spells out no %s (a code block after <!-- readme-file: %s -->)", name, name)
		}
	}
	return files
}

// sdkReplace is the README go.mod's replace line, which the test points at
// this checkout of the SDK.
var sdkReplace = regexp.MustCompile(`(?m)^replace github\.com/plugboard/plugboard/plugins/sdk => \S+$`)

// TestREADMEBuilds writes the README's go.mod, main.go and acme_test.go
// into an empty module, as a vendor would copy them, with the replace
// pointed at this SDK, and runs what the README says: go mod tidy, go
// build; then go vet and the README's own tests (sdktest.Check included).
func TestREADMEBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module from README.md; skipped in -short")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	files := readmeFiles(t)
	sdkDir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	if !sdkReplace.MatchString(files["go.mod"]) {
		t.Fatalf("the README's go.mod has no replace line for the SDK:\n%s", files["go.mod"])
	}
	files["go.mod"] = sdkReplace.ReplaceAllLiteralString(files["go.mod"],
		"replace github.com/plugboard/plugboard/plugins/sdk => "+sdkDir)
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env := append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"), "GOWORK=off")
	for _, args := range [][]string{
		{"mod", "tidy"},
		{"build", "-o", filepath.Join(t.TempDir(), "acme"), "."},
		{"vet", "./..."},
		{"test", "-count=1", "./..."},
	} {
		cmd := exec.Command(goBin, args...)
		cmd.Dir, cmd.Env = dir, env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			t.Fatalf("go %s in the README's module: %v\n%s", strings.Join(args, " "), err, out.String())
		}
	}
}

// TestREADMEPluginIsShort holds the README's plugin to what it promises: a
// whole plugin with one API key type in about 30 lines of code on the
// declarative layer (blank lines, comments, the package clause and the
// imports not counted).
func TestREADMEPluginIsShort(t *testing.T) {
	const maxLines = 35
	src := readmeFiles(t)["main.go"]
	if !strings.Contains(src, "sdk.Plugin{") {
		t.Errorf("the README's main.go does not declare an sdk.Plugin")
	}
	lines, inImports := 0, false
	for _, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "import (":
			inImports = true
		case inImports:
			inImports = line != ")"
		case line == "", strings.HasPrefix(line, "//"), strings.HasPrefix(line, "package "):
		default:
			lines++
		}
	}
	if lines > maxLines {
		t.Errorf("the README's main.go has %d lines of code, want at most %d", lines, maxLines)
	}
}
