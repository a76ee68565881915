//go:build unix && !linux

package pluginhost

import "syscall"

// dieWithHost does nothing where the kernel has no parent-death signal; the
// host kills its plugins when it stops normally.
func dieWithHost(*syscall.SysProcAttr) {}
