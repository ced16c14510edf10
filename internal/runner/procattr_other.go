//go:build !linux

package runner

import "syscall"

// Without a parent-death signal, a runner killed with SIGKILL leaves its
// children running; Ctrl-C still stops them in order.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
