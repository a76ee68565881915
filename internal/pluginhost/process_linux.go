//go:build linux

package pluginhost

import "syscall"

// dieWithHost asks the kernel to kill a plugin when the host dies, so a
// host that is SIGKILLed (or crashes) leaves no plugin processes behind.
func dieWithHost(attr *syscall.SysProcAttr) {
	attr.Pdeathsig = syscall.SIGKILL
}
