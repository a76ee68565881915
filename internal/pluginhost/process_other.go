//go:build !unix

package pluginhost

import (
	"os"
	"os/exec"
)

func ownProcessGroup(*exec.Cmd) {}

// killProcessGroup kills just the process where there are no process
// groups.
func killProcessGroup(pid int) {
	if p, err := os.FindProcess(pid); err == nil && pid > 0 {
		_ = p.Kill()
	}
}
